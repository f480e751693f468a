// KafkaJS as a non-Python producer and consumer would use it, for test_kafka_clients.py:
//   node client.js produce BROKER TOPIC VALUE
//   node client.js consume BROKER TOPIC GROUP COUNT   (prints the values read as a JSON list, commits)
const { Kafka, logLevel } = require("kafkajs");

const [mode, broker, topic, ...rest] = process.argv.slice(2);
const kafka = new Kafka({ clientId: "kafkajs-compat", brokers: [broker], logLevel: logLevel.ERROR });

async function produce(value) {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ key: "kafkajs", value }] });
  await producer.disconnect();
}

async function consume(group, count) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values = [];
  await new Promise((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          values.push(message.value.toString());
          const next = (BigInt(message.offset) + 1n).toString();
          await consumer.commitOffsets([{ topic, partition, offset: next }]);
          if (values.length >= count) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  console.log(JSON.stringify(values));
}

const run = mode === "produce" ? produce(rest[0]) : consume(rest[0], Number(rest[1]));
run.catch((error) => {
  console.error(error);
  process.exit(1);
});
