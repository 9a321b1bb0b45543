"""The simulator's command line: where it listens and what the "network" does per number.

An operator trying Kannel wants to see the whole path (sendsms, SMPP, receipts, smsrecon's
dlr-url) without a real SMSC and without pytest; this is the same simulator the Kannel
end-to-end test drives, with each destination's fate given as an option.
"""

from __future__ import annotations

import asyncio
import signal

import click

from pipeline.smsc.simulator import MESSAGE_STATES, Outcome, SmscSimulator, Status

#: What ``refuse`` alone answers a submit_sm with: "Invalid Destination Address".
DEFAULT_REFUSAL = int(Status.RINVDSTADR)


def parse_outcome(spec: str) -> Outcome:
    """``DELIVRD``, ``ENROUTE,ENROUTE,DELIVRD`` (receipts in order, the last one final),
    ``ACCEPTD,none`` (no final receipt) or ``refuse[:0x0B]`` (the submit_sm's error status).

    ValueError names what is wrong."""
    spec = spec.strip()
    if spec.lower().startswith("refuse"):
        _, _, code = spec.partition(":")
        try:
            status = int(code, 0) if code else DEFAULT_REFUSAL
        except ValueError:
            raise ValueError(f"{spec!r}: the refusal status is a number such as 0x0B") from None
        if not 0 < status <= 0xFFFFFFFF:
            raise ValueError(f"{spec!r}: the refusal status must be a non-zero 32-bit number")
        return Outcome(final=None, submit_status=status)
    stats = [part.strip().upper() for part in spec.split(",")]
    if not spec or not all(stats):
        raise ValueError(f"{spec!r}: give receipt stats such as ENROUTE,DELIVRD")
    *intermediate, final = stats
    known = ", ".join(MESSAGE_STATES)
    for stat in intermediate:
        if stat not in MESSAGE_STATES:
            raise ValueError(f"{spec!r}: {stat} is not a receipt stat ({known})")
    try:
        return Outcome(final=None if final == "NONE" else final, intermediate=tuple(intermediate))
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc} ({known})") from None


def _outcomes(specs: tuple[str, ...]) -> dict[str, Outcome]:
    outcomes = {}
    for item in specs:
        number, sep, spec = item.partition("=")
        if not sep or not number.strip().lstrip("+").isdigit():
            raise click.BadParameter(f"{item!r}: expected NUMBER=OUTCOME", param_hint="--outcome")
        try:
            outcomes[number.strip().lstrip("+")] = parse_outcome(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--outcome") from None
    return outcomes


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=2775,
    show_default=True,
    help="SMPP port (0: a free one; the bound address is printed).",
)
@click.option(
    "--system-id",
    default="smsrecon",
    show_default=True,
    help="The system_id the bind responses carry (any ESME system_id and password bind).",
)
@click.option(
    "--default",
    "default_spec",
    default="DELIVRD",
    show_default=True,
    help="What happens to a message for a number without --outcome.",
)
@click.option(
    "--outcome",
    "outcome_specs",
    multiple=True,
    metavar="NUMBER=OUTCOME",
    help="Per destination (digits, '+' optional): DELIVRD, UNDELIV, ENROUTE,DELIVRD, "
    "ACCEPTD,REJECTD, ENROUTE,none, refuse or refuse:0x0B (repeat).",
)
def simulator(
    host: str, port: int, system_id: str, default_spec: str, outcome_specs: tuple[str, ...]
) -> None:
    """An SMPP 3.4 SMSC for trying Kannel by hand, until Ctrl-C or SIGTERM.

    It answers binds, enquire_link, unbind and submit_sm. Submission ids are hex in
    submit_sm_resp and decimal in receipts (Kannel: msg-id-type = 0x01). Receipts are
    deliver_sm on the same transceiver bind, with the Appendix B text, dates in UTC.
    """
    from pipeline.config import LoggingSettings
    from pipeline.logs import configure_logging

    try:
        default = parse_outcome(default_spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--default") from None
    outcomes = _outcomes(outcome_specs)
    configure_logging(LoggingSettings(level="INFO"))
    try:
        asyncio.run(_serve(host, port, system_id, default, outcomes))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    click.echo("SMSC simulator stopped")


async def _serve(
    host: str, port: int, system_id: str, default: Outcome, outcomes: dict[str, Outcome]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SmscSimulator(
        outcomes, default=default, system_id=system_id, host=host, port=port
    ) as smsc:
        click.echo(
            f"SMSC simulator listening on {host}:{smsc.port} (system_id {system_id}, "
            f"{len(outcomes)} number(s) with an outcome, others {_describe(default)})"
        )
        await stop.wait()


def _describe(outcome: Outcome) -> str:
    if outcome.submit_status != Status.ROK:
        return f"refused 0x{outcome.submit_status:08X}"
    return ",".join([*outcome.intermediate, outcome.final or "no final receipt"])


def main() -> None:
    simulator(prog_name="python -m pipeline.smsc")
