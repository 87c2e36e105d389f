/** The JSON shapes of the jupyreg REST API (see jupyreg/serialize.py, jupyreg/lab/serialize.py). */

import { IDelta } from './format';

export const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;

/** Whether Production is stale against the server's repository (jupyreg/staleness.py);
 * `stale` null when it could not be measured (`summary` says why). */
export interface IStaleness {
  stale: boolean | null;
  summary: string;
  version: number | null;
  commits_behind: number | null;
  changed_data: string[];
  age_days: number | null;
  warnings: string[];
}

export interface IRegisteredModel {
  name: string;
  latest_version: number | null;
  production: number | null;
  staging: number | null;
  description: string;
  updated: string | null;
  /** null without a Production version. */
  staleness?: IStaleness | null;
  /** Set when models:/NAME/STAGE and models:/NAME@alias name different versions (a
   * stage changed outside jupyreg): which, and how to repair it. */
  split?: string | null;
}

/** The latest reproduction's outcome (jupyreg reproduce); null when never run. */
export type Reproduced = 'passed' | 'failed' | null;

/** A version's model card: the whole Markdown, and its YAML front matter and body apart. */
export interface IModelCard {
  name: string;
  card: string;
  front_matter: string;
  body: string;
}

export interface IPendingMark {
  id: string;
  to_stage: string;
  requested_by: string;
}

export interface IModelVersion {
  version: number;
  stage: string;
  aliases: string[];
  created: string | null;
  author: string | null;
  run_id: string | null;
  git_commit: string | null;
  git_dirty: boolean | null;
  data: string | null;
  gpu: string | null;
  reproduced?: Reproduced;
  metrics: Record<string, number>;
  /** The stages the lifecycle allows a move to from `stage`. */
  targets?: string[];
  pending_requests?: IPendingMark[];
}

export interface IReviewComment {
  by: string;
  at: string | null;
  comment: string;
}

export interface IPromotionRequest {
  id: string;
  name: string;
  version: number;
  to_stage: string;
  status: string;
  requested_by: string;
  reason: string;
  created_at: string;
  approvals: IReviewComment[];
  decided_by: string | null;
  comment: string | null;
  decided_at: string | null;
  /** The candidate's metrics, Production's, and the deltas (candidate - Production). */
  metrics?: Record<string, number>;
  production?: { version: number; metrics: Record<string, number> } | null;
  deltas?: Record<string, IDelta>;
  /** Why the reader may not approve it (the lifecycle's words: who may); null: they may. */
  blocked?: string | null;
}

export interface IHistoryEvent {
  id: string;
  name: string;
  version: number;
  from_stage: string;
  to_stage: string;
  author: string;
  reason: string;
  at: string;
  request_id: string | null;
  /** Who ran the check --repair that recorded a move made outside jupyreg. */
  repaired_by?: string | null;
  /** The verified workload identity (e.g. a GitHub Actions run) that named the author. */
  attestation?: Record<string, string> | null;
  comments?: IReviewComment[];
}

export type Decision = 'approve' | 'reject';
