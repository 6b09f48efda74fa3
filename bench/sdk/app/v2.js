'use strict';
// An older function's init: the whole AWS SDK v2, moment, lodash and axios.
const AWS = require('aws-sdk');
const moment = require('moment');
const _ = require('lodash');
const axios = require('axios');

const dynamo = new AWS.DynamoDB.DocumentClient({ region: 'eu-west-1' });
const http = axios.create({ timeout: 1000 });

exports.clients = { dynamo, http };
exports.handler = async () => ({
  statusCode: 200,
  body: JSON.stringify({ at: moment().toISOString(), n: _.chunk([1, 2, 3, 4], 2).length }),
});
