// Errors in the user's words: an API error (ApiError) or a failed job becomes a translated
// text chosen by its error.code (and a job's error_code and diagnosis); a parameter is named
// by the label of its form field, never by its API name. The server's own English message is
// never shown.
import { t, t_has } from './i18n.js';

// The label of the field that feeds each API parameter.
const errors_fieldKey = {
  query: 'filters.query', category: 'filters.category', language: 'filters.language',
  quantization: 'filters.quantization', license: 'filters.license', min_rating: 'filters.minRating',
  min_size_gb: 'filters.minSize', max_size_gb: 'filters.maxSize', sort: 'filters.sort',
  order: 'filters.order', max_ram_gb: 'machine.ram', max_vram_gb: 'machine.vram',
  limit: 'pager.label', offset: 'pager.label', fit: 'filters.fits',
};

export function errors_field(parameter) {
  const key = errors_fieldKey[parameter];
  return key ? t(key) : t('err.someField');
}

// errors_text(e): the translated text of an ApiError (or any {code, parameter, message}).
export function errors_text(e) {
  const code = (e && e.code) || '';
  if (code === 'invalid_parameter') {
    if (e.parameter === 'min_size_gb' && /max_size_gb/.test(e.message || '')) return t('err.sizeRange');
    return t('err.invalid_parameter', { field: errors_field(e.parameter) });
  }
  const http = /^http_(\d+)$/.exec(code);
  if (http) return t_has(`err.http_${http[1]}`) ? t(`err.http_${http[1]}`) : t('error.http', { status: http[1] });
  if (code && t_has(`err.${code}`)) return t(`err.${code}`);
  return e && e.status ? t('error.http', { status: e.status }) : t('err.unknown');
}

// errors_jobText(job): why a job failed, by its error_code and diagnosis.
export function errors_jobText(job) {
  const code = (job && job.error_code) || '';
  if (code === 'checksum_mismatch') {
    return t(job.diagnosis === 'catalogue_stale' ? 'jobErr.catalogue_stale' : 'jobErr.checksum_mismatch');
  }
  const http = /^http_(\d+)$/.exec(code);
  if (http) return t_has(`jobErr.http_${http[1]}`) ? t(`jobErr.http_${http[1]}`) : t('jobErr.http', { status: http[1] });
  if (code && t_has(`jobErr.${code}`)) return t(`jobErr.${code}`);
  return t('jobErr.unknown');
}
