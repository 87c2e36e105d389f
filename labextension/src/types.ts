/** The JSON shapes of the jupyreg REST API (see jupyreg/serialize.py). */

export const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;

export interface IRegisteredModel {
  name: string;
  latest_version: number | null;
  production: number | null;
  staging: number | null;
  description: string;
  updated: string | null;
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
  metrics: Record<string, number>;
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
  approvals: { by: string; at: string; comment: string }[];
  decided_by: string | null;
  comment: string | null;
  decided_at: string | null;
}

export type Decision = 'approve' | 'reject';
