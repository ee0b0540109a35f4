// consume.js runs one kafkajs group member for e2e/groups_clients_test.go:
//   node consume.js BROKER GROUP TOPIC CLIENT_ID
// It prints "partition offset" for every record it reads and commits that record before
// taking the next. On SIGTERM it disconnects (committing and leaving the group) and exits.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const [broker, groupId, topic, clientId] = process.argv.slice(2);
// Logs go to stderr: stdout carries only the records read.
const logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log;
  process.stderr.write(`${new Date().toISOString()} ${namespace} ${message} ${JSON.stringify(extra)}\n`);
};
const kafka = new Kafka({
  clientId,
  brokers: [broker],
  logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.WARN,
  logCreator,
  retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
});
const consumer = kafka.consumer({
  groupId,
  sessionTimeout: 6000,
  heartbeatInterval: 300,
  rebalanceTimeout: 10000,
  maxWaitTimeInMs: 200,
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await consumer.disconnect();
    process.exit(0);
  } catch (e) {
    console.error(e);
    process.exit(1);
  }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      process.stdout.write(`${partition} ${message.offset}\n`);
      await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
    },
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
