"""SIPp and baresip as peers of a test gateway, and the RTP audio in SIPp's pcaps."""

from __future__ import annotations

import asyncio
import socket
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


def free_baresip_port() -> int:
    """A ``sip_listen`` port for baresip: it binds UDP and TCP there and TLS on the TCP
    port above, so all three must be free (a full suite had the TLS one taken by another
    test's connection: 'SIP/TLS transport failed: Address already in use')."""
    for _ in range(100):
        port = free_udp_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
                tcp.bind(("127.0.0.1", port))
                tls.bind(("127.0.0.1", port + 1))
                return port
        except OSError:
            continue
    raise RuntimeError("no free UDP+TCP port pair for baresip")


def free_media_port() -> int:
    """A port for SIPp's ``-mp``: SIPp binds its audio there and its video two above, so
    both must be free (a busy machine had the second taken: 'Unable to bind video RTP
    socket ... errno 98')."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as audio, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as video:
            audio.bind(("127.0.0.1", 0))
            port = int(audio.getsockname()[1])
            try:
                video.bind(("127.0.0.1", port + 2))
            except OSError:
                continue
            return port
    raise AssertionError("no UDP port p with p + 2 free on 127.0.0.1")


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


BARESIP_RTP_PORTS = (32000, 32999)


def baresip_config(directory: Path, source: Path) -> Path:
    """A register-less baresip in ``directory``: it plays ``source`` (8 kHz WAV) into
    the call and dumps what it hears and what it sends as WAV files there."""
    lines = [
        ("poll_method", "epoll"), ("sip_listen", f"127.0.0.1:{free_baresip_port()}"),
        ("audio_source", f"aufile,{source}"), ("audio_player", "aufile,/dev/null"),
        ("audio_alert", "aufile,/dev/null"), ("audio_srate", "8000"), ("audio_channels", "1"),
        ("rtp_ports", "{}-{}".format(*BARESIP_RTP_PORTS)),
        ("module_path", "/usr/lib/baresip/modules"), ("module", "g711.so"),
        ("module", "aufile.so"), ("module", "sndfile.so"), ("module", "menu.so"),
        ("module_app", "account.so"), ("snd_path", str(directory)),
    ]
    (directory / "config").write_text("".join(f"{k}\t{v}\n" for k, v in lines))
    (directory / "accounts").write_text("<sip:tester@127.0.0.1>;regint=0\n")
    return directory


@asynccontextmanager
async def baresip(directory: Path, *commands: str,
                  seconds: int = 20) -> AsyncIterator[asyncio.subprocess.Process]:
    """baresip with ``directory``'s configuration, running ``commands`` at start;
    stopped on leaving (it quits by itself after ``seconds``). Its output is
    in ``directory / "baresip.log"``."""
    args = [arg for command in commands for arg in ("-e", command)]
    with (directory / "baresip.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(directory), "-t", str(seconds), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def read_wav(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").copy()


def write_wav(path: Path, samples: npt.NDArray[np.int16]) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def baresip_audio(directory: Path) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """What baresip sent and what it heard in its last call (its sndfile dumps)."""
    sent = read_wav(max(directory.glob("dump-*-enc.wav")))
    heard = read_wav(max(directory.glob("dump-*-dec.wav")))
    return sent, heard


def _udp_ports_bound() -> set[int]:
    with open("/proc/net/udp") as table:  # binding it ourselves to find out would race
        return {int(line.split()[1].split(":")[1], 16) for line in list(table)[1:]}


async def udp_bound(port: int, timeout: float = 10.0) -> None:
    """Wait until a peer process has bound UDP ``port`` (a call to it before that
    would be lost)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while port not in _udp_ports_bound():
        if loop.time() > deadline:
            raise TimeoutError(f"nothing bound udp port {port} in {timeout} s")
        await asyncio.sleep(0.01)
