// The softphone's audio thread: capture (microphone -> PCM16 frames at the plane's rate)
// and playback (PCM16 frames -> a small jitter buffer -> the speakers), each resampling
// between the AudioContext's rate and the plane's, and each marking the onsets of sound
// (a quiet stretch, then a sound) on the context's own clock, so the page can measure
// mouth-to-ear delay: the ear onset's frame minus the mouth onset's frame.
"use strict";

const TABLE_STEPS = 64;  // kernel samples per input sample (linearly interpolated between)

// Band-limited interpolation with a Blackman-windowed sinc, streaming. Its delay is
// `halfWidth` input samples; its cut-off is 90 % of the lower rate's Nyquist frequency.
class Resampler {
  constructor(inRate, outRate, halfTaps = 8, capacity = 16384) {
    const scale = Math.min(1, outRate / inRate);
    this.step = inRate / outRate;
    this.halfWidth = halfTaps / scale;
    this.reach = Math.ceil(this.halfWidth);
    const cutoff = 0.45 * scale;  // cycles per input sample
    const n = Math.ceil(this.halfWidth * TABLE_STEPS) + 2;
    this.table = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const d = i / TABLE_STEPS;
      const x = 2 * cutoff * d;
      const sinc = d === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = d >= this.halfWidth ? 0
        : 0.42 + 0.5 * Math.cos(Math.PI * d / this.halfWidth)
          + 0.08 * Math.cos(2 * Math.PI * d / this.halfWidth);
      this.table[i] = 2 * cutoff * sinc * w;
    }
    this.buf = new Float32Array(capacity);
    this.len = this.reach;  // starts with `reach` zeros of history
    this.t = this.reach;    // the next output's position, in input samples
    this.out = new Float32Array(Math.ceil(capacity / this.step) + 8);
  }

  // Resample `input`; returns a view of the outputs (valid until the next call).
  push(input) {
    if (this.len + input.length > this.buf.length) this.len = this.reach;  // cannot happen in use
    this.buf.set(input, this.len);
    this.len += input.length;
    const { buf, table, halfWidth, reach, step } = this;
    let t = this.t, count = 0;
    while (t + reach < this.len) {
      const c = Math.floor(t);
      let acc = 0;
      for (let k = c - reach + 1; k <= c + reach; k++) {
        const pos = Math.abs(t - k) * TABLE_STEPS;
        const i = pos | 0;
        if (i >= table.length - 1) continue;
        acc += buf[k] * (table[i] + (table[i + 1] - table[i]) * (pos - i));
      }
      this.out[count++] = acc;
      t += step;
    }
    const drop = Math.max(0, Math.floor(t) - reach);
    buf.copyWithin(0, drop, this.len);
    this.len -= drop;
    this.t = t - drop;
    return this.out.subarray(0, count);
  }
}

// A sound's start: the first sample above `threshold` after at least `quietFrames`
// frames (at the context rate) of samples below it.
class OnsetDetector {
  constructor(quietSeconds, threshold = 0.02) {
    this.quietFrames = Math.round(quietSeconds * sampleRate);
    this.threshold = threshold;
    this.quiet = 0;
  }

  // The frame (context clock) of an onset in `samples` starting at `start`, or -1.
  scan(samples, start) {
    let found = -1;
    for (let i = 0; i < samples.length; i++) {
      if (Math.abs(samples[i]) < this.threshold) {
        this.quiet++;
      } else {
        if (this.quiet >= this.quietFrames && found < 0) found = start + i;
        this.quiet = 0;
      }
    }
    return found;
  }
}

function peakDbfs(samples) {
  let peak = 0;
  for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
  return peak > 0 ? 20 * Math.log10(peak) : -120;
}

const LEVEL_EVERY = 40;  // render quanta between two level reports (~100 ms at 48 kHz)

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const rate = options.processorOptions.rate;
    this.resampler = new Resampler(sampleRate, rate);
    this.frameSamples = rate / 50;  // 20 ms: the plane's frame
    this.frame = new Int16Array(this.frameSamples);
    this.fill = 0;
    this.onsets = new OnsetDetector(0.15);
    this.peak = -120;
    this.quanta = 0;
  }

  process(inputs, outputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    const onset = this.onsets.scan(channel, currentFrame);
    if (onset >= 0) this.port.postMessage({ type: "onset", frame: onset });
    this.peak = Math.max(this.peak, peakDbfs(channel));
    if (++this.quanta % LEVEL_EVERY === 0) {
      this.port.postMessage({ type: "level", dbfs: this.peak });
      this.peak = -120;
    }
    const pcm = this.resampler.push(channel);
    for (let i = 0; i < pcm.length; i++) {
      const s = Math.max(-1, Math.min(1, pcm[i]));
      this.frame[this.fill++] = s < 0 ? s * 32768 : s * 32767;
      if (this.fill === this.frameSamples) {
        this.port.postMessage({ type: "frame", pcm: this.frame.buffer }, [this.frame.buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.fill = 0;
      }
    }
    return true;
  }
}

// The jitter buffer holds what arrived, at the context's rate. Playing starts (and
// restarts after running dry) once `target` is queued; more than `ceiling` queued (the
// network caught up after a stall) is cut back to `target`: the delay stays bounded.
// And it does not stay raised: when even the lowest fill over a second was more than
// `slack` above the target (a burst of frames came in once, after a stall of the page
// or of the network), the excess is dropped, so the delay returns to the target.
class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { rate, targetMs = 40, ceilingMs = 200, slackMs = 10 } = options.processorOptions;
    this.resampler = new Resampler(rate, sampleRate);
    this.target = Math.round(targetMs / 1000 * sampleRate);
    this.ceiling = Math.round(ceilingMs / 1000 * sampleRate);
    this.queue = new Float32Array(this.ceiling * 2 + 8192);
    this.queued = 0;
    this.playing = false;
    this.slack = Math.round(slackMs / 1000 * sampleRate);
    this.lowest = Infinity;  // the least queued at a quantum's start, this window
    this.window = 0;         // frames into the window (one second)
    this.stats = { underruns: 0, dropped: 0 };
    this.onsets = new OnsetDetector(0.15);
    this.peak = -120;
    this.quanta = 0;
    this.port.onmessage = (event) => this.receive(new Int16Array(event.data));
  }

  receive(pcm16) {
    const floats = new Float32Array(pcm16.length);
    for (let i = 0; i < pcm16.length; i++) floats[i] = pcm16[i] / 32768;
    const pcm = this.resampler.push(floats);
    if (this.queued + pcm.length > this.ceiling) {
      const cut = this.queued + pcm.length - this.target;
      const keep = Math.max(0, this.queued - cut);
      this.queue.copyWithin(0, this.queued - keep, this.queued);
      this.stats.dropped += this.queued - keep;
      this.queued = keep;
    }
    this.queue.set(pcm.subarray(Math.max(0, pcm.length - this.ceiling)), this.queued);
    this.queued += Math.min(pcm.length, this.ceiling);
  }

  // Once a second: drop what the lowest fill had beyond the target (see the class).
  drain(n) {
    if (this.playing) this.lowest = Math.min(this.lowest, this.queued);
    this.window += n;
    if (this.window < sampleRate) return;
    const excess = this.lowest === Infinity ? 0 : this.lowest - this.target;
    if (excess > this.slack) {
      this.queue.copyWithin(0, excess, this.queued);
      this.queued -= excess;
      this.stats.dropped += excess;
    }
    this.lowest = Infinity;
    this.window = 0;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    const n = out.length;
    this.drain(n);
    if (!this.playing && this.queued >= this.target) this.playing = true;
    if (this.playing) {
      const take = Math.min(n, this.queued);
      out.set(this.queue.subarray(0, take));
      out.fill(0, take);
      this.queue.copyWithin(0, take, this.queued);
      this.queued -= take;
      if (take < n) {
        this.playing = false;
        this.stats.underruns++;
      }
    } else {
      out.fill(0);
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    const onset = this.onsets.scan(out, currentFrame);
    if (onset >= 0) this.port.postMessage({ type: "onset", frame: onset });
    this.peak = Math.max(this.peak, peakDbfs(out));
    if (++this.quanta % LEVEL_EVERY === 0) {
      this.port.postMessage({ type: "level", dbfs: this.peak, queuedMs:
        this.queued / sampleRate * 1000, ...this.stats });
      this.peak = -120;
    }
    return true;
  }
}

registerProcessor("telcoflow-capture", CaptureProcessor);
registerProcessor("telcoflow-playback", PlaybackProcessor);
