"""The same flow, event-driven: a `Listener` polls the events API and calls handlers.

    listener = Listener(config)

    @listener.on("job:ready", job="sheet:submitLargeSheet", is_part=True)
    async def process(event, client): ...

    listener.run_forever()   # or listener.start() / listener.stop() from a notebook

`multipart_listener()` registers the seed's two listeners in one call: the parent's
`job:ready` splits it from a plan, each part's `job:ready` runs your handler on its
records, and the parent's `job:parts-completed` settles it from the summary counts.

Delivery is at least once (like Flatfile's own polling driver): within one run an event
is handed to the handlers once, and it is acknowledged on the server once every handler
for it succeeded, so a restarted listener does not redo it. On start a listener first
drains the backlog, the events nobody acknowledged (those that came while no listener
ran, and those whose handler failed), then follows new events. An event whose handler
raised is not acknowledged (unless `ack_failed=True`): the next listener to start
handles it again.

The modules: `polling.py` (`Listener`: the poller, the worker pool, acknowledging),
`cursor.py` (where the next read starts, and which events are new), `routes.py` (which
handlers an event goes to, and the errors they raised), `multipart.py`
(`multipart_listener()`: split, process, settle).
"""

from __future__ import annotations

from splitkit.listener.multipart import multipart_listener
from splitkit.listener.polling import Listener
from splitkit.listener.routes import HandlerError

__all__ = ["HandlerError", "Listener", "multipart_listener"]
