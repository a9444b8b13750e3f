"""voicecall worker: everything that talks to eSMS (actors, middleware, the eSMS client)."""
