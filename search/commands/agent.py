"""``search agent serve``: run the Pi agent, which times models sent by ``search bench --device``
and ``search start --device``. The same as ``python -m evaluators.agent serve`` on a board that has
only numpy and LiteRT.
"""

from __future__ import annotations

import os

TOKEN_ENV = "NAS_LITE_DEVICE_TOKEN"


def register(subparsers):
    parser = subparsers.add_parser("agent", help="run the Pi agent (HTTP service that times models)", description=__doc__)
    actions = parser.add_subparsers(dest="agent_action", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="serve GET /info and POST /benchmark", description=__doc__)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface; needs --token)")
    serve.add_argument("--port", type=int, default=8765, help="port (default %(default)s; 0: any free port)")
    serve.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"the token clients must send (default: ${TOKEN_ENV})")
    serve.add_argument("--max-body-mb", type=float, default=64, help="largest model accepted, in MiB (default %(default)s)")
    serve.add_argument("--read-seconds", type=float, help="time a client has to send its model, in seconds (default 60)")
    serve.add_argument("--max-tensor-mb", type=float, help="largest total size of a model's tensors, in MiB (default 1024)")
    serve.add_argument("--max-seconds", type=float, help="longest one benchmark may take, in seconds (default 600)")
    serve.set_defaults(run=run_serve)


def run_serve(args):
    from evaluators.agent import serve

    limits = {name: getattr(args, name) for name in ("read_seconds", "max_tensor_mb", "max_seconds") if getattr(args, name) is not None}
    serve(args.host, args.port, args.token, args.max_body_mb, **limits)
