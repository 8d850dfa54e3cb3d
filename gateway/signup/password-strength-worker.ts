/**
 * The zxcvbn-ts estimator in a worker thread (started by password-rules.ts): estimating
 * takes milliseconds to tens of milliseconds of CPU per password, which on the main
 * thread would stall every other request (and time out their Redis commands) during a
 * burst of sign-ups. Builds the dictionaries once, then answers
 * { id, password, userInputs } with { id, score, feedback }.
 */
import { parentPort } from 'node:worker_threads';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as englishDictionary, translations } from '@zxcvbn-ts/language-en';

const estimator = new ZxcvbnFactory({
  translations,
  graphs: adjacencyGraphs,
  dictionary: { ...commonDictionary, ...englishDictionary },
});

parentPort!.on('message', (request: { id: number; password: string; userInputs: string[] }) => {
  const result = estimator.check(request.password, request.userInputs);
  const feedback = [result.feedback.warning, ...result.feedback.suggestions].filter((s): s is string => !!s);
  parentPort!.postMessage({ id: request.id, score: result.score, feedback });
});
