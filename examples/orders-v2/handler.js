// An order-lookup function written the way many older Lambda functions are: the whole AWS SDK v2,
// moment for dates, and all of lodash, loaded at init.
const { analyze } = require('@coldstart/analyzer');
const AWS = require('aws-sdk');
const moment = require('moment');
const _ = require('lodash');

const dynamo = new AWS.DynamoDB.DocumentClient({ region: process.env.AWS_REGION || 'us-east-1' });

exports.handler = analyze(async (event) => {
  const order = { id: event.orderId || 'o-1', placedAt: moment().subtract(3, 'days') };
  return {
    statusCode: 200,
    body: JSON.stringify({
      id: order.id,
      age: order.placedAt.fromNow(),
      items: _.chunk([1, 2, 3, 4], 2).length,
      client: typeof dynamo.get,
    }),
  };
});
