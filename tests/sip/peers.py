"""SIPp and baresip as peers of a test gateway, and the RTP audio in SIPp's pcaps."""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from telcoflow.audio import g711

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_AUDIO = Path("/usr/share/sip-tester")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SippRun:
    returncode: int
    output: str

    def counter(self, name: str) -> int:
        """A cumulative counter from SIPp's final screen ('Successful call', ...)."""
        for line in self.output.splitlines():
            if line.strip().startswith(name):
                return int(line.split("|")[2].split()[0])
        raise AssertionError(f"no {name!r} in SIPp's output:\n{self.output[-2000:]}")


async def sipp(*args: str, timeout: float = 60.0, cwd: Path | None = None) -> SippRun:
    """Run SIPp to completion (bounded by ``timeout`` and ``-timeout``), no stdin."""
    proc = await asyncio.create_subprocess_exec(
        "sipp", *args, "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=str(cwd) if cwd else None)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    return SippRun(proc.returncode if proc.returncode is not None else -9,
                   out.decode(errors="replace"))


def pcap_rtp(path: Path) -> list[tuple[int, int, int, bytes]]:
    """(payload type, sequence, timestamp, payload) of every RTP packet in a pcap
    (Ethernet / IPv4 / UDP, as SIPp's bundled files are)."""
    data = path.read_bytes()
    packets, pos = [], 24
    while pos + 16 <= len(data):
        length = struct.unpack("<I", data[pos + 8:pos + 12])[0]
        frame = data[pos + 16:pos + 16 + length]
        pos += 16 + length
        ihl = (frame[14] & 0x0F) * 4
        rtp = frame[14 + ihl + 8:]
        packets.append((rtp[1] & 0x7F, struct.unpack(">H", rtp[2:4])[0],
                        struct.unpack(">I", rtp[4:8])[0], rtp[12:]))
    return packets


def pcap_speech() -> npt.NDArray[np.int16]:
    """The recorded PCMA speech SIPp plays, decoded to PCM16 at 8 kHz."""
    payload = b"".join(p[3] for p in pcap_rtp(SIPP_AUDIO / "g711a.pcap") if p[0] == 8)
    return np.frombuffer(g711.alaw_decode_bytes(payload), "<i2").copy()
