"""A synchronous client of a labgrid coordinator (labgrid 26's gRPC protocol, through
labgrid's own client session run on a private event loop).

    with Coordinator("127.0.0.1:20408") as c:
        c.places({"board": "mps2-an500"})     # -> [Place(name, tags, acquired_by)]
        c.acquire("m7-0"); c.serial_url("m7-0"); c.release("m7-0")

Every failure is a DeviceError naming the coordinator (exit 3). A Coordinator belongs to the
thread that made it: labgrid's session is bound to that thread's event loop.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from edgert.errors import DeviceError, UserError

CONNECT_TIMEOUT = 5.0  # seconds: labgrid's own client blocks 20 s on a peer that never answers
DEFAULT_ADDRESS = "127.0.0.1:20408"  # labgrid-coordinator's default --listen port


@dataclass(frozen=True)
class Place:
    name: str
    tags: dict[str, str]
    acquired_by: str | None  # "host/user", or None when free
    online: bool             # every match of the place has a live exported resource


def _labgrid():
    try:
        import grpc
        from labgrid.remote import client
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
    except ImportError:
        raise UserError("--labgrid needs labgrid", "pip install 'edgert[farm]' (labgrid 26)") from None
    return grpc, client, pb2


class Coordinator:
    def __init__(self, address: str = DEFAULT_ADDRESS):
        grpc, client, self._pb2 = _labgrid()
        self.address = address
        unreachable = DeviceError(f"cannot reach the labgrid coordinator at {address}",
                                  "start it (labgrid-coordinator --listen ADDRESS, or `edgert farm serve`), "
                                  "or give its address with --coordinator HOST:PORT")
        channel = grpc.insecure_channel(address)
        try:
            grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT)
        except grpc.FutureTimeoutError:
            raise unreachable from None
        finally:
            channel.close()
        self._grpc = grpc
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)  # grpc.aio binds its channel to the thread's current loop
        try:
            self._session = client.start_session(address, loop=self._loop)
        except client.Error:
            self._loop.close()
            asyncio.set_event_loop(None)
            raise unreachable from None
        self.me = f"{self._session.gethostname()}/{self._session.getuser()}"

    # ------------------------------------------------------------------ plumbing

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def _sync(self) -> None:
        """Apply every update the coordinator sent before now (places, resources)."""
        if not self._run(self._session.sync_with_coordinator()):
            raise DeviceError(f"lost the labgrid coordinator at {self.address}", "check that it still runs")

    def _rpc(self, method: str, request) -> None:
        try:
            self._run(getattr(self._session.stub, method)(request))
        except self._grpc.aio.AioRpcError as e:
            raise DeviceError(f"labgrid coordinator {self.address}: {e.details()}", f"({e.code().name})") from None
        self._sync()

    def sleep(self, seconds: float) -> None:
        """Wait, letting the coordinator's updates arrive."""
        self._run(asyncio.sleep(seconds))

    # ------------------------------------------------------------------ places

    def places(self, tags: dict[str, str] | None = None) -> list[Place]:
        """The places whose tags include every one of ``tags``, by name."""
        self._sync()
        out = []
        for name, p in sorted(self._session.places.items()):
            if all(p.tags.get(k) == v for k, v in (tags or {}).items()):
                out.append(Place(name, dict(p.tags), p.acquired or None, self._online(p)))
        return out

    def _online(self, place) -> bool:
        live = [(e, g, entry.cls, r) for e, groups in self._session.resources.items()
                for g, rs in groups.items() for r, entry in rs.items() if entry.data and entry.avail]
        return bool(place.matches) and place.unmatched(live) is None

    def acquire(self, name: str) -> bool:
        """Take the place; False when someone else has it (or took it first)."""
        try:
            self._rpc("AcquirePlace", self._pb2.AcquirePlaceRequest(placename=name))
        except DeviceError as e:
            if "FAILED_PRECONDITION" in (e.hint or ""):
                return False
            raise
        return True

    def release(self, name: str) -> None:
        self._rpc("ReleasePlace", self._pb2.ReleasePlaceRequest(placename=name))

    def serial_url(self, name: str) -> str:
        """``socket://host:port`` of the NetworkSerialPort of a place this client holds."""
        self._sync()
        place = self._session.places.get(name)
        if place is None or place.acquired != self.me:
            raise DeviceError(f"place {name} is not held by {self.me}", "acquire it first")
        for exporter, group, cls, rname in place.acquired_resources:
            if cls == "NetworkSerialPort":
                entry = self._session.resources.get(exporter, {}).get(group, {}).get(rname)
                if entry is None or not entry.data:
                    raise DeviceError(f"place {name}: its serial port {exporter}/{group}/{rname} is gone",
                                      "its exporter stopped: start it again")
                return f"socket://{entry.params['host']}:{int(entry.params['port'])}"
        raise DeviceError(f"place {name} has no NetworkSerialPort",
                          "export the board's serial port with ser2net as a labgrid NetworkSerialPort")

    def has_exporter(self, name: str, groups: int) -> bool:
        """Whether exporter ``name`` has published ``groups`` live resource groups."""
        self._sync()
        live = [g for g, rs in self._session.resources.get(name, {}).items() if any(e.data for e in rs.values())]
        return len(live) >= groups

    def power_port(self, name: str) -> dict | None:
        """The NetworkPowerPort of a place this client holds ({"model", "host", "index"}), or None."""
        self._sync()
        place = self._session.places.get(name)
        for exporter, group, cls, rname in (place.acquired_resources if place else []):
            if cls == "NetworkPowerPort":
                entry = self._session.resources.get(exporter, {}).get(group, {}).get(rname)
                if entry is not None and entry.data:
                    return {k: entry.params[k] for k in ("model", "host", "index")}
        return None

    def create_place(self, name: str, matches: list[str], tags: dict[str, str]) -> None:
        """A place (replacing one of that name) matching each of ``matches`` (exporter/group/class), tagged."""
        self._sync()
        if name in self._session.places:
            self.delete_place(name)
        self._rpc("AddPlace", self._pb2.AddPlaceRequest(name=name))
        for match in matches:
            self._rpc("AddPlaceMatch", self._pb2.AddPlaceMatchRequest(placename=name, pattern=match))
        self._rpc("SetPlaceTags", self._pb2.SetPlaceTagsRequest(placename=name, tags=tags))

    def delete_place(self, name: str) -> None:
        self._rpc("DeletePlace", self._pb2.DeletePlaceRequest(name=name))

    def close(self) -> None:
        try:
            self._run(self._session.stop())
            self._run(self._session.close())
        except Exception:  # the coordinator may already be gone: nothing left to tell it
            pass
        finally:
            self._loop.close()
            asyncio.set_event_loop(None)

    def __enter__(self) -> "Coordinator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
