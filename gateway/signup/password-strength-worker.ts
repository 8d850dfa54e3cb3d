/**
 * The zxcvbn-ts estimator in a worker thread (started by password-rules.ts): estimating
 * takes milliseconds to tens of milliseconds of CPU per password, which on the main
 * thread would stall every other request (and time out their Redis commands) during a
 * burst of sign-ups. Builds the dictionaries once, then answers
 * { id, password, userInputs } with { id, score, feedback, feedbackKeys }: the warning and
 * suggestions in English (APIs) and as keys (`warnings.straightRow`), which pages show in
 * the customer's language from views/locales (`password.zxcvbn.<key>`).
 */
import { parentPort } from 'node:worker_threads';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as englishDictionary, translations } from '@zxcvbn-ts/language-en';

type Messages = typeof translations;
/** The same shape with each message replaced by its own key, so feedback comes back as keys. */
const keyed = Object.fromEntries(
  Object.entries(translations).map(([group, messages]) => [group, Object.fromEntries(Object.keys(messages).map((name) => [name, `${group}.${name}`]))]),
) as Messages;
const english = (key: string): string => {
  const [group, name] = key.split('.') as [keyof Messages, string];
  return (translations[group] as Record<string, string> | undefined)?.[name] ?? key;
};

const estimator = new ZxcvbnFactory({
  translations: keyed,
  graphs: adjacencyGraphs,
  dictionary: { ...commonDictionary, ...englishDictionary },
});

parentPort!.on('message', (request: { id: number; password: string; userInputs: string[] }) => {
  const result = estimator.check(request.password, request.userInputs);
  const feedbackKeys = [result.feedback.warning, ...result.feedback.suggestions].filter((s): s is string => !!s);
  parentPort!.postMessage({ id: request.id, score: result.score, feedback: feedbackKeys.map(english), feedbackKeys });
});
