'use strict';
// A typical Node.js Lambda function's init: AWS SDK v3 clients and express (hundreds of modules).
const { S3Client, GetObjectCommand } = require('@aws-sdk/client-s3');
const { DynamoDBClient, GetItemCommand } = require('@aws-sdk/client-dynamodb');
const express = require('express');

const s3 = new S3Client({ region: 'eu-west-1' });
const dynamodb = new DynamoDBClient({ region: 'eu-west-1' });
const app = express();
app.get('/', (_request, response) => response.send('ok'));

exports.clients = { s3, dynamodb, app, GetObjectCommand, GetItemCommand };
exports.handler = async () => ({ statusCode: 200, body: 'ok' });
