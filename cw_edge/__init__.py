"""What both services do at their network edge, written once: bearer tokens and the caller's
identity, TLS and the loopback rule, server reflection (v1 and v1alpha).

A package of its own because the orchestrator never imports the store's code (it talks to the
store only through gRPC), and neither service should carry a copy of the other's interceptor.
"""
