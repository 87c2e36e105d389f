/** What the views may ask the panel to do; the panel calls the API, then refreshes. */

import { Decision } from './types';

export interface IRegistryActions {
  /** Approve or reject a request; resolves to the refusal's message, null when done. */
  decide(
    requestId: string,
    decision: Decision,
    comment: string
  ): Promise<string | null>;
  /** File a promotion request; resolves to the refusal's message, null when done. */
  request(
    name: string,
    version: number,
    stage: string,
    reason: string
  ): Promise<string | null>;
  /** A view was opened or changed by the user: a stale message goes. */
  viewChanged(): void;
  /** Open the model card of a version in the main area. */
  openCard(name: string, version: number): void;
}
