// The v3 handler as an ES module: the AWS SDK v3 clients imported as ES modules, and date-fns.
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { formatISO } from 'date-fns';

const s3 = new S3Client({ region: 'eu-west-1' });
const dynamodb = new DynamoDBClient({ region: 'eu-west-1' });

export const clients = { s3, dynamodb };
export const handler = async () => ({ statusCode: 200, body: formatISO(new Date(0)) });
