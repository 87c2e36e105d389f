/** Typed calls of the registry REST API; no registry logic lives here. */

import { postJSON, requestAPI } from './request';
import {
  Decision,
  IHistoryEvent,
  IModelCard,
  IModelVersion,
  IPromotionRequest,
  IRegisteredModel
} from './types';

const path = (...parts: string[]): string =>
  parts.map(encodeURIComponent).join('/');

export async function whoAmI(): Promise<string> {
  return (await requestAPI<{ user: string }>('identity')).user;
}

export async function listModels(): Promise<IRegisteredModel[]> {
  return (await requestAPI<{ models: IRegisteredModel[] }>('models')).models;
}

export async function listVersions(name: string): Promise<IModelVersion[]> {
  const reply = await requestAPI<{ versions: IModelVersion[] }>(
    path('models', name, 'versions')
  );
  return reply.versions;
}

export async function listPendingRequests(): Promise<IPromotionRequest[]> {
  const reply = await requestAPI<{ requests: IPromotionRequest[] }>(
    'requests',
    {},
    { status: 'pending' }
  );
  return reply.requests;
}

export async function fileRequest(
  name: string,
  version: number,
  stage: string,
  reason: string
): Promise<IPromotionRequest> {
  const reply = await postJSON<{ request: IPromotionRequest }>('requests', {
    name,
    version,
    stage,
    reason
  });
  return reply.request;
}

export async function decide(
  requestId: string,
  decision: Decision,
  comment: string
): Promise<IPromotionRequest> {
  const reply = await postJSON<{ request: IPromotionRequest }>(
    path('requests', requestId, decision),
    { comment }
  );
  return reply.request;
}

export async function listHistory(name: string): Promise<IHistoryEvent[]> {
  const reply = await requestAPI<{ history: IHistoryEvent[] }>(
    path('models', name, 'history')
  );
  return reply.history;
}

/** The model card of `version` of `name`. */
export async function getModelCard(
  name: string,
  version: number
): Promise<IModelCard> {
  return requestAPI<IModelCard>(
    path('models', name, 'card'),
    {},
    { version: String(version) }
  );
}
