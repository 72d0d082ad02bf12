"""The `cmt-collect` command line.

    cmt-collect serve                        the whole local stack (what `make run` runs)
    cmt-collect keys create --role admin     print a new key (and nothing else) on stdout
    cmt-collect report --trial T             compute and publish the pre/post report now
    cmt-collect weekly-summary --trial T     send the weekly summary e-mail now
    cmt-collect rescore --trial T            score stored submissions not yet scored (DLQ recovery)
    cmt-collect demo [--no-serve]            seed a synthetic 12-week trial, run it all, serve it

Commands other than serve and demo talk to the running local stack (found through
.local/stack.env) or, on AWS, to whatever the environment configures.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Any

STATE_DIR = pathlib.Path(os.environ.get("CMT_STATE_DIR", ".local"))


def _require_backend() -> None:
    from local.stack import use_running_stack

    if not use_running_stack(STATE_DIR):
        sys.exit(
            "no AWS configured and no local stack running: start one with `make run` "
            "(or set AWS_ENDPOINT_URL and CMT_* variables)"
        )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from local.stack import LocalStack

    stack = LocalStack(state_dir=STATE_DIR, api_port=args.port, aws_port=args.aws_port)
    endpoint = stack.start_aws()
    stack.create_resources()
    admin_key = stack.bootstrap_admin(os.environ.get("CMT_BOOTSTRAP_ADMIN_KEY") or None)
    stack.start_pump()
    stack.start_schedules()
    state = stack.write_state()

    from handlers.api_app import create_app
    from handlers.settings import get_settings
    from handlers.wiring import build
    from local.cors import ALLOWED_ORIGINS_VARIABLE, behind_http_api

    # answering as API Gateway would: CORS for the allowed origins, and its answers when a
    # response breaks Lambda's size or time limit
    origins = os.environ.get(ALLOWED_ORIGINS_VARIABLE, "")
    app = behind_http_api(create_app(build(get_settings())), allowed_origins=origins)
    print(
        "\n".join(
            [
                "cmt-collect local stack",
                f"  API            http://127.0.0.1:{args.port}   (docs: /docs)",
                f"  embedded AWS   {endpoint}   (moto server; region eu-west-2)",
                f"  admin key      {admin_key}",
                f"  outbox         {stack.outbox_dir}   (every e-mail sent, as .eml)",
                f"  state          {state}   (the CLI reads it: cmt-collect report --trial T)",
                "  schedules      pre/post report nightly 02:00 UTC;"
                " weekly summary Monday 08:00 UTC",
                "  stream pump    scoring submissions as they arrive",
                "  limits         as on AWS: a response over 6 MB (as Lambda counts it) is"
                " API Gateway's 500, one past 30 s its 503",
                f"  CORS origins   {origins or 'none'}   ({ALLOWED_ORIGINS_VARIABLE})",
                "Ctrl-C stops everything (the embedded AWS is in memory).",
            ]
        ),
        flush=True,
    )
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        stack.stop()
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    _require_backend()
    from handlers.settings import get_settings
    from handlers.wiring import build

    container = build(get_settings())
    if args.role != "admin":
        container.trials.get(args.trial)
    created = container.keys.create(role=args.role, trial_id=args.trial or "*", label=args.label)
    print(created.api_key)
    print(f"key id {created.key_id} ({created.role})", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    _require_backend()
    from handlers import prepost_report

    result: dict[str, Any] = prepost_report.handler({"trial_id": args.trial}, None)
    print(json.dumps(result, indent=2))
    return 0


def _weekly(args: argparse.Namespace) -> int:
    _require_backend()
    from handlers import weekly_summary

    result: dict[str, Any] = weekly_summary.handler({"trial_id": args.trial}, None)
    print(json.dumps(result, indent=2))
    outbox = os.environ.get("CMT_OUTBOX_DIR")
    if outbox:
        print(f"outbox: {outbox}")
    return 0


def _rescore(args: argparse.Namespace) -> int:
    """Re-run scoring for every stored submission of a trial (idempotent: scored ones are
    no-ops). The way to recover records that ended in the on-failure queue."""
    _require_backend()
    from handlers.settings import get_settings
    from handlers.wiring import build

    container = build(get_settings())
    container.trials.get(args.trial)
    result = container.scoring.rescore(args.trial)
    for submission_id, error in result.failed.items():
        print(f"{submission_id}: {error}", file=sys.stderr)
    print(
        json.dumps(
            {
                "submissions": result.submissions,
                "newly_scored": result.newly_scored,
                "failed": len(result.failed),
            }
        )
    )
    return 1 if result.failed else 0


def _demo(args: argparse.Namespace) -> int:
    import os
    import sys

    from local.demo import run_demo

    code = run_demo(state_dir=STATE_DIR, port=args.port, serve=not args.no_serve)
    # The stack is stopped and its state file gone. The API server's pool threads (anyio's
    # workers are not daemons) may still wait for its event loop, which ended with the
    # server: exit now rather than wait on them at interpreter shutdown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cmt-collect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the local stack")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--aws-port", type=int, default=int(os.environ.get("CMT_AWS_PORT", "0")))
    serve.set_defaults(run=_serve)
    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", choices=["admin", "coordinator", "submitter"], required=True)
    create.add_argument("--trial", help="trial id (coordinator and submitter keys)")
    create.add_argument("--label", default="cli")
    create.set_defaults(run=_keys_create)
    report = sub.add_parser("report", help="compute and publish the pre/post report now")
    report.add_argument("--trial", required=True)
    report.set_defaults(run=_report)
    weekly = sub.add_parser("weekly-summary", help="send the weekly summary now")
    weekly.add_argument("--trial", required=True)
    weekly.set_defaults(run=_weekly)
    rescore = sub.add_parser("rescore", help="score any stored submission not yet scored")
    rescore.add_argument("--trial", required=True)
    rescore.set_defaults(run=_rescore)
    demo = sub.add_parser(
        "demo", help="seed a synthetic trial, run the whole pipeline, then serve it until Ctrl-C"
    )
    demo.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="API port of the demo stack (another free one if taken; 0: any)",
    )
    demo.add_argument(
        "--no-serve", action="store_true", help="exit once everything is written (scripts, CI)"
    )
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    if getattr(args, "keys_command", None) == "create" and args.role != "admin" and not args.trial:
        parser.error("--trial is required for coordinator and submitter keys")
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
