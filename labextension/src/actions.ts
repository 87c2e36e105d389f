/** What the views may ask the panel to do; the panel calls the API, then refreshes. */

import { Decision } from './types';

export interface IRegistryActions {
  /** Approve or reject a request; resolves to false when the registry refused. */
  decide(requestId: string, decision: Decision, comment: string): Promise<boolean>;
  /** File a promotion request; resolves to false when the registry refused. */
  request(
    name: string,
    version: number,
    stage: string,
    reason: string
  ): Promise<boolean>;
}
