"""The one write path of the store's resources: a Create or an Update does the same checks and the
same work in its transaction whether it comes from the resource's own RPC (api/crud.py) or from a
change of AppendEvent (api/events.py). The rules it applies are store_service/rules/."""
