// The machine the models run on: the server's profile (GET /api/models/system: RAM, VRAM,
// GPUs, free disk), shown under "This machine", and figures the user may type in instead
// (kept in this browser). machine_fitOf(model) is the fit class on the machine in effect:
// the search answer's fit for the server's machine, the same rule as the server's
// (core/machine.h) for the user's own figures.
import { api } from './api.js';
import { query_ownFigures, query_saveOwnFigures } from './query.js';

let machine_profile = null;       // the last GET /api/models/system answer, or null

export async function machine_load() {
  try { machine_profile = await api('/api/models/system'); } catch { machine_profile = null; }
  return machine_profile;
}

export function machine_server() { return machine_profile; }

// The user's figures in GB as typed ('' when empty).
export function machine_override() { return query_ownFigures(); }

export function machine_saveOverride(ram, vram) { query_saveOwnFigures(ram, vram); }

export function machine_isOwn() {
  const o = machine_override();
  return o.ram !== '' || o.vram !== '';
}

// The figures in effect, in GB: {ram, vram, own}, or null when nothing is known.
export function machine_effective() {
  const o = machine_override();
  const srv = machine_profile;
  const srvRam = srv ? (Number(srv.ram_bytes) || 0) / 1e9 : 0;
  const srvVram = srv ? (Number(srv.vram_bytes) || 0) / 1e9 : 0;
  if (o.ram === '' && o.vram === '') return srv ? { ram: srvRam, vram: srvVram, own: false } : null;
  return { ram: o.ram !== '' ? Number(o.ram) : srvRam, vram: o.vram !== '' ? Number(o.vram) : 0, own: true };
}

// The memory a model needs (GB): recommendedHardware, else estimated from its size.
function machine_need(m) {
  const hw = (m && m.recommendedHardware) || {};
  const ok = (v) => Number.isFinite(v) && v > 0;
  const ram = hw.ramGb;
  const vram = hw.vramGb;
  if (!ok(ram) && !ok(vram)) {
    const est = ok(m.sizeGb) ? m.sizeGb * 1.2 + 0.5 : 0;
    return { ram: est, vram: est, estimated: true };
  }
  return { ram: ok(ram) ? ram : vram, vram: ok(vram) ? vram : ram, estimated: false };
}

// {fit, estimated} of model m on the machine in effect, or null when unknown.
export function machine_fitOf(m) {
  const eff = machine_effective();
  if (!eff || !eff.own) return m && m.fit ? { fit: m.fit, estimated: !!m.fit_estimated } : null;
  const need = machine_need(m);
  let fit;
  if (eff.vram > 0) {
    fit = need.vram <= eff.vram ? 'full_gpu' : need.ram <= eff.vram + eff.ram ? 'partial_gpu' : 'too_large';
  } else {
    fit = need.ram <= eff.ram ? 'cpu' : 'too_large';
  }
  return { fit, estimated: need.estimated };
}
