// The same function after the usual fixes: one modular AWS SDK v3 client, Intl instead of
// moment, and no lodash.
const { analyze } = require('@coldstart/analyzer');
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');

const client = new DynamoDBClient({ region: process.env.AWS_REGION || 'us-east-1' });
const age = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

exports.handler = analyze(async (event) => {
  const chunks = [];
  for (let i = 0; i < 4; i += 2) chunks.push([i + 1, i + 2]);
  return {
    statusCode: 200,
    body: JSON.stringify({
      id: event.orderId || 'o-1',
      age: age.format(-3, 'day'),
      items: chunks.length,
      client: typeof client.send,
    }),
  };
});
