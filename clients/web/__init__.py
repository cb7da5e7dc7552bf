"""cw in the browser: a web server that is a client of the store and the orchestrator through the
SDK (`cw web`; README "cw in the browser")."""
