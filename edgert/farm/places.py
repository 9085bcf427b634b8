"""Boards from a labgrid farm for one run: acquire up to N places whose tags match (waiting
while too few are free), reach each board over its place's serial port, put the build on it
where it runs another model, check its HELLO, and release every place on the way out (Ctrl-C
included).

    with Coordinator(address) as c, acquired(c, {"board": "mps2-an500"}, want=4, at_least=1) as names:
        with boards(build, c, names) as (ready, lost):   # ready: [(place, Board)]
            ...
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator

from edgert.errors import DeviceError, EdgertError, UserError

from .coordinator import Coordinator

POLL = 1.0  # seconds between looks at busy places
SERIAL_FLASH_METHODS = ("serial-stm32", "smp")  # what can reach a board through its place's serial port
EMULATED_TAG = "emulated"  # a place tagged emulated=yes is an emulated board: its latency is in instructions


def default_tags(build) -> dict[str, str]:
    """The places a build can run on, unless --tags says otherwise: those of its board."""
    return {"board": build.meta.get("board") or build.meta["target"]}


@contextlib.contextmanager
def acquired(coord: Coordinator, tags: dict[str, str], *, want: int, at_least: int = 1, wait: float = 600.0,
             say: Callable[[str], None] = lambda line: None) -> Iterator[list[str]]:
    """Hold up to ``want`` places matching ``tags``. Takes what is free; while fewer than
    ``at_least`` are, waits (up to ``wait`` seconds), saying who holds the others. All are
    released when the block ends, however it ends."""
    if not 1 <= at_least <= want:
        raise UserError(f"--boards-min {at_least} with --boards {want}", "give 1 <= --boards-min <= --boards")
    held: list[str] = []
    try:
        deadline = time.monotonic() + wait
        last = ""
        while True:
            places = coord.places(tags)
            if not places:
                raise UserError(f"no labgrid place at {coord.address} has the tags "
                                f"{' '.join(f'{k}={v}' for k, v in tags.items())}",
                                "list them with `labgrid-client -x ADDRESS places -v`; pass --tags to choose others")
            for p in places:
                if len(held) < want and p.name not in held and p.acquired_by is None and p.online:
                    if coord.acquire(p.name):
                        held.append(p.name)
            if len(held) >= want or (len(held) >= at_least and _none_coming(coord, tags, held)):
                break
            busy = [f"{p.name} ({p.acquired_by})" if p.acquired_by else f"{p.name} (offline)"
                    for p in coord.places(tags) if p.name not in held]
            line = (f"waiting for places: holding {len(held)} of the {want} wanted (at least {at_least}); "
                    f"busy: {', '.join(busy)}")
            if line != last:
                say(line)
                last = line
            if time.monotonic() >= deadline:
                raise DeviceError(f"waited {wait:g} s for {at_least} labgrid place(s) with tags "
                                  f"{' '.join(f'{k}={v}' for k, v in tags.items())}; {len(held)} became free",
                                  "try again later, lower --boards-min, or release places that are held by mistake "
                                  "(`labgrid-client -p PLACE release --kick`)")
            coord.sleep(POLL)
        if len(held) < want:
            say(f"using {len(held)} of the {want} places wanted: the others are held by someone else or offline")
        yield held
    finally:
        for name in held:
            try:
                coord.release(name)
            except DeviceError:  # the coordinator went away: it frees the place when it restarts
                pass


def _none_coming(coord: Coordinator, tags: dict[str, str], held: list[str]) -> bool:
    """Enough are held to start; the rest are busy: start rather than wait for them."""
    return all(p.name in held or p.acquired_by is not None or not p.online for p in coord.places(tags))


@contextlib.contextmanager
def boards(build, coord: Coordinator, names: list[str], *, method: str | None = None, timeout: float,
           invoke_timeout: float, trace: bool = False,
           say: Callable[[str], None] = lambda line: None) -> Iterator[tuple[list, dict[str, str]]]:
    """A board session on each held place, in parallel: (ready, lost), where ready is
    [(place, Board)] and lost {place: why it could not be used}. Closed when the block ends."""
    urls = {name: coord.serial_url(name) for name in names}
    power = {name: coord.power_port(name) for name in names}
    tags = {p.name: p.tags for p in coord.places()}
    ready: dict[str, object] = {}
    lost: dict[str, str] = {}

    def open_one(name: str) -> None:
        try:
            ready[name] = open_board(build, name, urls[name], tags.get(name, {}).get(EMULATED_TAG) == "yes", method,
                                     power=power[name], timeout=timeout, invoke_timeout=invoke_timeout, trace=trace,
                                     say=say)
        except EdgertError as e:
            lost[name] = f"{e.message} ({e.hint})" if e.hint else e.message

    threads = [threading.Thread(target=open_one, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        yield [(n, ready[n]) for n in names if n in ready], lost
    finally:
        for b in ready.values():
            b.session.close()


def power_cycle(power: dict) -> None:
    """Switch a place's NetworkPowerPort off and on, through labgrid's backend for its model
    (labgrid.driver.power.<model>), as labgrid's NetworkPowerDriver does."""
    import importlib

    try:
        backend = importlib.import_module(f"labgrid.driver.power.{power['model']}")
    except ImportError:
        raise UserError(f"labgrid has no power backend {power['model']!r}",
                        "check the place's NetworkPowerPort model") from None
    host, port = power["host"], None
    if getattr(backend, "PORT", None):  # backends that talk to host:port themselves
        host, _, given = host.partition(":")
        port = int(given) if given else backend.PORT
    try:
        backend.power_set(host, port, power["index"], False)
        time.sleep(0.2)
        backend.power_set(host, port, power["index"], True)
    except Exception as e:  # requests, sockets and each backend's own errors
        raise DeviceError(f"switching the power of {power['host']} failed: {e}", "check the power switch") from None


def open_board(build, name: str, url: str, emulated: bool, method: str | None, *, power: dict | None = None,
               timeout: float, invoke_timeout: float, trace: bool, say: Callable[[str], None]):
    """The board at ``url`` running ``build``: where it runs another model (or answers nothing:
    a board in its bootloader) and ``method`` allows it, flashed first, after a power cycle
    where the place can switch its power (a board that starts in its bootloader, as an STM32
    whose BOOT0 is held high does)."""
    from edgert import flashing
    from edgert.device.board import Board
    from edgert.device.session import Session
    from edgert.device.transport import SerialTransport

    def session(budget: float) -> Session:
        return Session(SerialTransport(url), timeout=budget, invoke_timeout=invoke_timeout, trace=trace,
                       name=f"place {name}")

    if method != "none":
        probe = session(min(timeout, 2.0))  # a board in its bootloader answers nothing: do not wait long
        try:
            probe.check_build(build.meta)
            runs_it = True
        except DeviceError:
            runs_it = False
        finally:
            probe.close()
        if not runs_it:
            board = build.target.board
            how = method or next((m for m in board.flash_methods if m in SERIAL_FLASH_METHODS), None) if board else None
            if how is None:
                raise UserError(f"place {name} runs another model, and board "
                                f"{board.name if board else build.meta['target']} has no way to be flashed "
                                "over a serial port", f"flash it first (`edgert flash BUILD --port ...`)")
            if power is not None:
                say(f"{name}: power cycle (into its bootloader)")
                power_cycle(power)
            say(f"{name}: flashing {build.report['summary']['model']} by {how}")
            flashing.flash(build, how, url, timeout=timeout, trace=trace)
    s = session(timeout)
    try:
        hello = s.check_build(build.meta)
    except BaseException:
        s.close()
        raise
    return Board(s, hello, emulated, f"{name} ({url})")
