// The station's HTTP API: JSON in and out, the session's CSRF token on every write.

import { detailText } from './logic.js';

let csrf = null;

/** Remember the CSRF token /api/me gave this device's session. */
export function setCsrf(token) {
  csrf = token;
}

/** A refused or failed call; `message` is what the station said. */
export class ApiError extends Error {
  constructor(status, body) {
    super(detailText(body, status));
    this.status = status;
    this.body = body;
  }
}

/** Call the API; resolves to the parsed JSON, rejects with an ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const put = (path, body = {}) => api('PUT', path, body);
