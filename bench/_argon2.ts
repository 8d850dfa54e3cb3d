/**
 * One Argon2id hash's CPU cost at the login benchmark's setting (7 MiB, t=5, p=1), in
 * this process (bench/login.ts pins it to the server core): prints ms per hash as JSON.
 */
import { hash } from '@node-rs/argon2';

const options = { algorithm: 2, memoryCost: 7168, timeCost: 5, parallelism: 1 };
for (let i = 0; i < 5; i++) await hash('warm-up-password', options);
const n = Number(process.argv[2] ?? 100);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < n; i++) await hash(`password-${i}`, options);
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ cpuMsPerHash: (cpu.user + cpu.system) / 1000 / n, wallMsPerHash: (performance.now() - t0) / n }));
