// Human-readable sizes, speeds, durations and dates, in the current language.
import { fmtNumber, t, i18n_intl } from './i18n.js';

const format_units = ['B', 'kB', 'MB', 'GB', 'TB'];

// Bytes in decimal units (1 GB = 10^9 bytes, as sizeGb in the gallery).
export function format_bytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return '–';
  let i = 0;
  let v = bytes;
  while (v >= 1000 && i < format_units.length - 1) { v /= 1000; i++; }
  const digits = i === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${fmtNumber(v, digits)} ${format_units[i]}`;
}

export function format_gb(gb) {
  return Number.isFinite(gb) ? format_bytes(gb * 1e9) : '–';
}

export function format_speed(bps) {
  return t('progress.speed', { speed: format_bytes(bps) });
}

// Seconds as "45 s", "3 min 20 s", "2 h 5 min".
export function format_duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${Math.max(s, 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

export function format_percent(p) {
  return i18n_intl(Intl.NumberFormat, { style: 'percent', maximumFractionDigits: p < 10 ? 1 : 0 })
    .format((Number(p) || 0) / 100);
}

export function format_date(iso, withTime = true) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '–';
  const opts = withTime ? { dateStyle: 'medium', timeStyle: 'short' } : { dateStyle: 'medium' };
  return i18n_intl(Intl.DateTimeFormat, opts).format(d);
}
