/** The one HTTP helper: calls /jupyreg/api/... through the server connection. */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The header that carries the `registryUri` setting (never in a URL: access logs). */
export const REGISTRY_HEADER = 'X-JupyReg-Registry-URI';

let registryUri = '';

/** The registry the sidebar's settings chose; '' for the server's configured one. */
export function setRegistryUri(uri: string): void {
  registryUri = uri.trim();
}

/** An error answered by the registry API: `kind` is the jupyreg error type name;
 * `message` is worded for the GUI, `detail` is the registry's own words. */
export class RegistryAPIError extends Error {
  constructor(
    readonly kind: string,
    message: string,
    readonly status: number,
    readonly detail: string = message
  ) {
    super(message);
  }
}

export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  query: Record<string, string> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url =
    URLExt.join(settings.baseUrl, 'jupyreg', 'api', endPoint) +
    URLExt.objectToQueryString(query);
  const headers = new Headers(init.headers);
  if (registryUri) {
    headers.set(REGISTRY_HEADER, registryUri);
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      url,
      { ...init, headers },
      settings
    );
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    throw new RegistryAPIError(
      data?.error ?? 'HTTPError',
      data?.message ?? response.statusText,
      response.status,
      data?.detail ?? data?.message ?? response.statusText
    );
  }
  return data as T;
}

export function postJSON<T>(endPoint: string, body: unknown): Promise<T> {
  return requestAPI<T>(endPoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}
