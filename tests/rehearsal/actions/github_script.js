// Stand-in for actions/github-script v7: like its src/async-function.ts, the script becomes the body of
// an async function of (require, github, context, core). `github` records instead of calling the API:
// issues.createComment writes the body to $MODELSHIP_REHEARSAL_DIR/comments/<pr>/<n>.md, and
// actions.listWorkflowRuns answers from the rehearsal's own runs ($MODELSHIP_REHEARSAL_DIR/runs.json).
// Anything else the scripts call throws "not implemented by the stand-in".
'use strict';
const fs = require('fs');
const path = require('path');

const state = process.env.MODELSHIP_REHEARSAL_DIR;
const event = JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH, 'utf8'));
const [owner, repo] = (process.env.GITHUB_REPOSITORY || '/').split('/');

const context = {
  payload: event,
  eventName: process.env.GITHUB_EVENT_NAME,
  sha: process.env.GITHUB_SHA,
  ref: process.env.GITHUB_REF,
  runId: Number(process.env.GITHUB_RUN_ID),
  actor: process.env.GITHUB_ACTOR,
  repo: { owner, repo },
  issue: { owner, repo, number: (event.pull_request || event.issue || {}).number },
};

function createComment({ issue_number, body }) {
  const folder = path.join(state, 'comments', String(issue_number));
  fs.mkdirSync(folder, { recursive: true });
  const n = fs.readdirSync(folder).filter((f) => f.endsWith('.md')).length + 1;
  const file = path.join(folder, `${String(n).padStart(2, '0')}.md`);
  fs.writeFileSync(file, body);
  console.log(`stand-in github-script: PR #${issue_number} comment -> ${file}`);
  return { data: { id: n, body } };
}

function listWorkflowRuns({ workflow_id, branch, status, per_page }) {
  const file = path.join(state, 'runs.json');
  const runs = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : [];
  const found = runs
    .filter((r) => r.workflow === workflow_id && (!branch || r.branch === branch))
    .filter((r) => !status || r.conclusion === status)
    .sort((a, b) => b.id - a.id)
    .slice(0, per_page || 30);
  return { data: { total_count: found.length, workflow_runs: found } };
}

const notImplemented = (name) => () => { throw new Error(`${name} is not implemented by the stand-in`); };
const github = {
  rest: {
    issues: { createComment: async (a) => createComment(a), listComments: notImplemented('issues.listComments') },
    actions: { listWorkflowRuns: async (a) => listWorkflowRuns(a) },
  },
};

const core = {
  setOutput: (name, value) => fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`),
  setFailed: (message) => { console.log(`::error::${message}`); process.exitCode = 1; },
  info: (m) => console.log(m),
  warning: (m) => console.log(`::warning::${m}`),
};

const AsyncFunction = Object.getPrototypeOf(async () => null).constructor;
const script = process.env.INPUT_SCRIPT || '';
new AsyncFunction('require', 'github', 'context', 'core', script)(require, github, context, core)
  .then((result) => {
    if (result !== undefined) core.setOutput('result', JSON.stringify(result));
  })
  .catch((error) => core.setFailed(`stand-in github-script: ${error.message}`));
