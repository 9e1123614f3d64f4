// The console's pages: live calls (polled), call records (with the recording's waveform
// and the quality timeline), and the page switch. Data comes from /console/api/…, the
// REST plane for the logged-in connector. Every value is put in the page as text.
"use strict";

(() => {
  const LIVE_EVERY_MS = 1000;
  const RECORDS_EVERY_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const view = window.consoleView = { page: null, live: [], records: [], liveUpdates: 0,
    selected: null, waveform: null, quality: null, error: null };

  async function api(path) {
    const response = await fetch(`/console/api/${path}`, { cache: "no-store" });
    if (response.status === 401) {  // the session expired: back to the login form
      location.assign("/");
      throw new Error("logged out");
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response;
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text === undefined || text === null ? "—" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  const fmt = {
    ms: (v) => (typeof v === "number" ? `${Math.round(v)} ms` : "—"),
    s: (v) => (typeof v === "number" ? `${v.toFixed(1)} s` : "—"),
    time: (v) => (typeof v === "number" ? new Date(v).toLocaleTimeString() : "—"),
    leg: (q) => (q ? `${num(q.score)} · ${num(q.levelDbfs)} dBFS · ${num(q.snrDb)} dB` : "—"),
    // the agent's audio queued for the caller (its delay), the caller's jitter, and
    // the caller's frames lost, late or concealed
    media: (m) => (m ? `${fmt.ms((m.playoutQueuedS || 0) * 1000)} · ${fmt.ms(m.jitterMs)} · `
      + `${(m.lost || 0) + (m.late || 0) + (m.concealed || 0)}` : "—"),
  };
  function num(v) { return typeof v === "number" ? v.toFixed(0) : "—"; }
  function grade(q) {
    if (!q || typeof q.score !== "number") return "";
    return q.score >= 70 ? "good" : q.score >= 40 ? "fair" : "poor";
  }
  function alerts(record) {
    const q = record.quality || {};
    const all = [...((q.caller || {}).alerts || []), ...((q.agent || {}).alerts || [])];
    return all.map((a) => (typeof a === "string" ? a : a.type || a.kind || a.name
      || JSON.stringify(a))).join(", ");
  }

  // ── live calls ─────────────────────────────────────────────────────────
  async function pollLive() {
    try {
      const { items } = await (await api("calls?state=live&limit=100")).json();
      view.live = items;
      view.liveUpdates++;
      view.error = null;
      renderLive(items);
    } catch (err) {
      view.error = err.message;
    }
  }

  function renderLive(items) {
    const body = $("live-table").tBodies[0];
    body.replaceChildren();
    for (const r of items) {
      const row = body.insertRow();
      row.dataset.callId = r.callId;
      const q = r.quality || {};
      cell(row, r.callId);
      cell(row, `${r.from} → ${r.to}`);
      cell(row, r.ingress);
      cell(row, r.state);
      cell(row, fmt.s(r.durationS));
      cell(row, fmt.ms(r.setupMs));
      cell(row, fmt.media(r.media));
      cell(row, fmt.leg(q.caller), grade(q.caller));
      cell(row, fmt.leg(q.agent), grade(q.agent));
      cell(row, alerts(r), "alert");
    }
    $("live-empty").hidden = items.length > 0;
    $("live-count").textContent = `(${items.length})`;
  }

  // ── call records ───────────────────────────────────────────────────────
  async function pollRecords() {
    try {
      const { items } = await (await api("calls?state=ended&limit=50")).json();
      view.records = items;
      renderRecords(items);
    } catch (err) {
      view.error = err.message;
    }
  }

  function renderRecords(items) {
    const body = $("records-table").tBodies[0];
    body.replaceChildren();
    for (const r of items) {
      const row = body.insertRow();
      row.dataset.callId = r.callId;
      row.className = "clickable" + (r.callId === view.selected ? " selected" : "");
      const q = r.quality || {};
      cell(row, r.callId);
      cell(row, `${r.from} → ${r.to}`);
      cell(row, r.ingress);
      cell(row, r.outcome);
      cell(row, fmt.time(r.arrivedAt));
      cell(row, fmt.s(r.durationS));
      cell(row, fmt.ms(r.setupMs));
      cell(row, `${num((q.caller || {}).score)} / ${num((q.agent || {}).score)}`);
      cell(row, r.recording ? `${fmt.s(r.recording.seconds)}` : "none");
      row.addEventListener("click", () => select(r));
    }
    $("records-empty").hidden = items.length > 0;
  }

  async function select(record) {
    view.selected = record.callId;
    view.waveform = view.quality = null;
    document.querySelectorAll("#records-table tr.selected").forEach((r) => r.classList.remove("selected"));
    const row = document.querySelector(`#records-table tr[data-call-id="${CSS.escape(record.callId)}"]`);
    if (row) row.classList.add("selected");
    $("record-detail").hidden = false;
    $("record-title").textContent = `${record.callId}: ${record.from} → ${record.to}, ${record.outcome}`;
    $("record-json").textContent = JSON.stringify(record, null, 2);
    view.quality = drawQuality($("record-quality"), record.quality || {});
    const audio = $("record-audio");
    if (!record.recording) {
      audio.removeAttribute("src");
      clear($("record-wave"), "no recording for this call");
      return;
    }
    const url = `/console/api/calls/${encodeURIComponent(record.callId)}/recording`;
    audio.src = url;
    try {
      const bytes = await (await api(`calls/${encodeURIComponent(record.callId)}/recording`)).arrayBuffer();
      const decoder = new OfflineAudioContext(1, 1, 8000);
      const buffer = await decoder.decodeAudioData(bytes);
      view.waveform = drawWave($("record-wave"), buffer);
    } catch (err) {
      clear($("record-wave"), `cannot draw the recording: ${err.message}`);
      view.error = err.message;
    }
  }

  function clear(canvas, message) {
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = "#5f6570";
    g.fillText(message, 10, 20);
  }

  // Each channel in its own band: the min and max of the samples under each pixel.
  function drawWave(canvas, buffer) {
    const g = canvas.getContext("2d");
    const { width, height } = canvas;
    g.clearRect(0, 0, width, height);
    const bands = buffer.numberOfChannels;
    const band = height / bands;
    const colours = ["#1a73e8", "#e8710a"];
    const peaks = [];
    for (let c = 0; c < bands; c++) {
      const data = buffer.getChannelData(c);
      const per = Math.max(1, Math.floor(data.length / width));
      const mid = band * c + band / 2;
      let peak = 0;
      g.fillStyle = colours[c % colours.length];
      for (let x = 0; x < width; x++) {
        let lo = 0, hi = 0;
        for (let i = x * per; i < Math.min(data.length, (x + 1) * per); i++) {
          lo = Math.min(lo, data[i]);
          hi = Math.max(hi, data[i]);
        }
        peak = Math.max(peak, hi, -lo);
        g.fillRect(x, mid - hi * band / 2, 1, Math.max(1, (hi - lo) * band / 2));
      }
      peaks.push(peak);
    }
    return { channels: bands, seconds: buffer.duration, peaks };
  }

  // Per leg, in its own band (caller on top): score 0–100 solid, level −60–0 dBFS dashed.
  function drawQuality(canvas, quality) {
    const g = canvas.getContext("2d");
    const { width, height } = canvas;
    g.clearRect(0, 0, width, height);
    const legs = [["caller", "#1a73e8"], ["agent", "#e8710a"]];
    const band = height / legs.length;
    const tMax = Math.max(1, ...legs.flatMap(([leg]) =>
      ((quality[leg] || {}).timeline || []).map((p) => p.t)));
    let points = 0;
    legs.forEach(([leg, colour], index) => {
      const timeline = (quality[leg] || {}).timeline || [];
      const top = index * band;
      points += timeline.length;
      g.fillStyle = "#5f6570";
      g.fillText(leg, 4, top + 12);
      g.strokeStyle = colour;
      for (const [key, toY, dash] of [["score", (v) => 1 - v / 100, []],
        ["levelDbfs", (v) => -Math.max(-60, Math.min(0, v)) / 60, [4, 3]]]) {
        g.setLineDash(dash);
        g.beginPath();
        let started = false;
        for (const p of timeline) {
          if (typeof p[key] !== "number") continue;
          const x = p.t / tMax * (width - 60) + 50, y = top + 6 + toY(p[key]) * (band - 12);
          if (started) g.lineTo(x, y); else g.moveTo(x, y);
          started = true;
        }
        g.stroke();
      }
    });
    g.setLineDash([]);
    if (!points) clear(canvas, "no quality timeline for this call");
    return { points };
  }

  // ── pages ──────────────────────────────────────────────────────────────
  const timers = {};
  function every(name, fn, ms) {
    clearInterval(timers[name]);
    fn();
    timers[name] = setInterval(() => { if (!document.hidden) fn(); }, ms);
  }

  function showPage() {
    const page = (location.hash || "#live").slice(1);
    view.page = ["live", "records", "phone"].includes(page) ? page : "live";
    document.querySelectorAll(".page").forEach((p) =>
      p.classList.toggle("active", p.id === `page-${view.page}`));
    document.querySelectorAll("nav a").forEach((a) =>
      a.classList.toggle("active", a.dataset.page === view.page));
    Object.values(timers).forEach(clearInterval);
    if (view.page === "live") every("live", pollLive, LIVE_EVERY_MS);
    if (view.page === "records") every("records", pollRecords, RECORDS_EVERY_MS);
  }

  window.addEventListener("hashchange", showPage);
  window.addEventListener("DOMContentLoaded", async () => {
    showPage();
    try {
      const me = await (await api("me")).json();
      $("who").textContent = `connector ${me.connector}`;
    } catch { /* api() went back to the login form */ }
  });
})();
