"""Run the service: ``python -m sentiment_service`` (settings from ``SENTIMENT_*`` variables).

One uvicorn worker process: Kubernetes scales pods, the micro-batcher needs the requests of a
pod in one process, and in-process Prometheus metrics stay exact. On SIGTERM the server stops
accepting connections, keeps reading requests already on their way (SENTIMENT_SHUTDOWN_DRAIN_S),
lets every request in progress finish (up to SENTIMENT_GRACEFUL_TIMEOUT_S), then the lifespan hook
drains the batcher (server.py).
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from .api import create_app
from .server import DrainingServer, protocol_class
from .settings import Settings


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=protocol_class(settings, app.state.admission),
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.graceful_timeout_s),
        timeout_keep_alive=settings.keep_alive_s,
        server_header=False,
    )
    server = DrainingServer(config, drain_s=settings.shutdown_drain_s)
    server.run()
    # uvicorn swallows lifespan start-up failures into a non-started server: report them.
    return 0 if server.started else 1


if __name__ == "__main__":
    raise SystemExit(main())
