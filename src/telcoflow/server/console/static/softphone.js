// The browser softphone: the simulated-phone protocol over /console/phone (the session
// cookie authorizes it), PCM16 at RATE both ways, audio through audio-worklet.js.
"use strict";

(() => {
  const RATE = 16000;  // wideband; the worklets resample to and from the context's rate
  const PAIR_WITHIN_S = 2.0;  // an ear onset this soon after a mouth onset is its echo

  const $ = (id) => document.getElementById(id);
  const state = window.softphone = {
    status: "idle", callId: null, error: null, framesSent: 0, framesHeard: 0,
    micDbfs: -120, earDbfs: -120, earPeakDbfs: -120, micOnsets: 0, earOnsets: 0,
    latenciesMs: [], outputLatencyMs: 0, underruns: 0, dropped: 0, queuedMs: 0,
  };
  let ws = null, ctx = null, stream = null, nodes = [], lastMouth = null;

  function show(status, detail) {
    state.status = status;
    $("phone-status").textContent = detail ? `${status}: ${detail}` : status;
    $("phone-call").disabled = status !== "idle" && status !== "ended";
    $("phone-hangup").disabled = !["dialling", "ringing", "answered"].includes(status);
  }

  function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
  }

  function render() {
    $("meter-mic").value = Math.max(0, state.micDbfs + 60);
    $("meter-ear").value = Math.max(0, state.earDbfs + 60);
    const m = median(state.latenciesMs);
    $("phone-latency").textContent = m === null ? "—"
      : `${m.toFixed(0)} ms (median of ${state.latenciesMs.length}; + ${state.outputLatencyMs.toFixed(0)} ms output)`;
    $("phone-stats").textContent = `sent ${state.framesSent} · heard ${state.framesHeard} frames`
      + ` · buffer ${state.queuedMs.toFixed(0)} ms · underruns ${state.underruns}`;
  }

  function onCapture(msg) {
    if (msg.type === "frame") {
      if (state.status === "answered" && ws && ws.readyState === WebSocket.OPEN) {
        ws.send(msg.pcm);
        state.framesSent++;
      }
    } else if (msg.type === "onset") {
      lastMouth = msg.frame;
      state.micOnsets++;
    } else if (msg.type === "level") {
      state.micDbfs = msg.dbfs;
      render();
    }
  }

  function onPlayback(msg) {
    if (msg.type === "onset") {
      state.earOnsets++;
      if (lastMouth !== null && state.status === "answered") {
        const delay = (msg.frame - lastMouth) / ctx.sampleRate;
        if (delay > 0 && delay < PAIR_WITHIN_S) state.latenciesMs.push(delay * 1000);
        lastMouth = null;  // one echo per utterance
      }
    } else if (msg.type === "level") {
      state.earDbfs = msg.dbfs;
      if (state.status === "answered") state.earPeakDbfs = Math.max(state.earPeakDbfs, msg.dbfs);
      Object.assign(state, { underruns: msg.underruns, dropped: msg.dropped, queuedMs: msg.queuedMs });
      render();
    }
  }

  function onText(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (frame.type === "ringing") {
      state.callId = frame.callId;
      show("ringing", frame.callId);
    } else if (frame.type === "answered") {
      show("answered", state.callId);
    } else if (frame.type === "hangup") {
      show("ended", `${frame.reason}: ${frame.message}`);
      stopAudio();
    } else if (frame.type === "error") {
      state.error = `${frame.code}: ${frame.message}`;
      $("phone-error").textContent = state.error;
    }
  }

  async function startAudio() {
    if (!window.isSecureContext) {  // browsers give the microphone to secure pages only
      throw new Error("this page is not a secure context: open the console on localhost "
        + "or 127.0.0.1, or serve the gateway over TLS (docs/console.md)");
    }
    ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("/console/static/audio-worklet.js");
    const processing = !$("phone-raw").checked;
    stream = await navigator.mediaDevices.getUserMedia({ audio: {
      channelCount: 1, echoCancellation: processing, noiseSuppression: processing,
      autoGainControl: processing } });
    const source = ctx.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(ctx, "telcoflow-capture", {
      numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { rate: RATE } });
    const playback = new AudioWorkletNode(ctx, "telcoflow-playback", {
      numberOfInputs: 0, outputChannelCount: [1], processorOptions: { rate: RATE } });
    const sink = ctx.createGain();
    sink.gain.value = 0;  // the capture node outputs nothing; connected so it is pulled
    source.connect(capture).connect(sink).connect(ctx.destination);
    playback.connect(ctx.destination);
    capture.port.onmessage = (e) => onCapture(e.data);
    playback.port.onmessage = (e) => onPlayback(e.data);
    nodes = [source, capture, playback, sink];
    await ctx.resume();
    state.outputLatencyMs = ((ctx.baseLatency || 0) + (ctx.outputLatency || 0)) * 1000;
    return playback;
  }

  function stopAudio() {
    nodes.forEach((n) => n.disconnect());
    nodes = [];
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (ctx) ctx.close();
    stream = ctx = null;
  }

  async function call() {
    const number = $("phone-number").value.trim();
    state.error = null;
    $("phone-error").textContent = "";
    Object.assign(state, { callId: null, framesSent: 0, framesHeard: 0, latenciesMs: [],
      earPeakDbfs: -120, micOnsets: 0, earOnsets: 0 });
    show("dialling", number);
    let playback;
    try {
      playback = await startAudio();
    } catch (err) {
      state.error = `microphone or audio unavailable: ${err.message}`;
      $("phone-error").textContent = state.error;
      show("idle");
      stopAudio();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}/console/phone`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => ws.send(JSON.stringify({ type: "dial", to: number, from: "console",
      codec: "pcm16", sampleRate: RATE }));
    ws.onmessage = (e) => {
      if (typeof e.data === "string") return onText(e.data);
      state.framesHeard++;
      playback.port.postMessage(e.data, [e.data]);
    };
    ws.onclose = (e) => {
      if (state.status !== "ended") show("ended", e.reason || `connection closed (${e.code})`);
      stopAudio();
      ws = null;
    };
  }

  function hangup() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "hangup" }));
  }

  function dtmf(event) {
    const digit = event.target.dataset.digit;
    if (digit && ws && state.status === "answered") {
      ws.send(JSON.stringify({ type: "dtmf", digit, durationMs: 100 }));
    }
  }

  window.addEventListener("DOMContentLoaded", async () => {
    $("phone-call").addEventListener("click", call);
    $("phone-hangup").addEventListener("click", hangup);
    $("phone-keypad").addEventListener("click", dtmf);
    show("idle");
    try {
      const me = await (await fetch("/console/api/me", { cache: "no-store" })).json();
      if (me.numbers && me.numbers.length) $("phone-number").value = me.numbers[0];
      $("phone-numbers").textContent = (me.numbers || []).join(", ") || "none";
    } catch { /* the console page reports a lost session */ }
  });
})();
