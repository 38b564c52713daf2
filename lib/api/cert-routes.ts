/**
 * TLS certificates of the cluster's domains:
 *
 *   GET    /v1/certs            every certificate: domain, names, source, issuer, not-after, state, last error
 *   POST   /v1/certs            {domain, cert, key}: add (or replace) a custom certificate, checked first
 *   DELETE /v1/certs/:domain    remove one (a wildcard as %2A.example.com or *.example.com)
 *
 * Answers never hold a private key: they are CertSummary objects, and the
 * response schema lets no other field through.
 */
import type { FastifyInstance } from 'fastify';
import { addCustomCertificate, listCertificates, removeCertificate } from '../certs/store.js';
import { errorResponses, noQuery } from './schemas.js';
import type { ApiContext } from './server.js';

const NULLABLE_STRING = { type: ['string', 'null'] } as const;
/** The whole answer shape: nothing else (no key) can be serialised. */
export const CERT_SUMMARY = {
  type: 'object',
  additionalProperties: false,
  required: ['domain', 'names', 'source', 'issuer', 'notAfter', 'state', 'lastError'],
  properties: {
    domain: { type: 'string' },
    names: { type: 'array', items: { type: 'string' } },
    source: { type: 'string' },
    issuer: NULLABLE_STRING,
    notAfter: NULLABLE_STRING,
    state: { type: 'string' },
    lastError: NULLABLE_STRING,
  },
} as const;

/** PEM text: one certificate chain or key is well under this. */
const PEM = { type: 'string', minLength: 1, maxLength: 64 * 1024 } as const;

export function registerCertRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/certs', { schema: { querystring: noQuery, response: { 200: { type: 'array', items: CERT_SUMMARY }, ...errorResponses } } }, async () => listCertificates(ctx.client));

  app.post<{ Body: { domain: string; cert: string; key: string } }>(
    '/v1/certs',
    {
      schema: {
        querystring: noQuery,
        body: { type: 'object', additionalProperties: false, required: ['domain', 'cert', 'key'], properties: { domain: { type: 'string', minLength: 1, maxLength: 255 }, cert: PEM, key: PEM } },
        response: { 200: CERT_SUMMARY, ...errorResponses },
      },
    },
    async (req) => {
      const summary = await addCustomCertificate(ctx.client, req.body.domain, req.body.cert, req.body.key);
      ctx.log?.(`certificate for ${summary.domain} added by ${req.token?.name ?? 'anonymous'} (${summary.names.join(', ')}, until ${summary.notAfter ?? '?'})`);
      return summary;
    },
  );

  app.delete<{ Params: { domain: string } }>(
    '/v1/certs/:domain',
    {
      schema: {
        querystring: noQuery,
        params: { type: 'object', additionalProperties: false, required: ['domain'], properties: { domain: { type: 'string', minLength: 1, maxLength: 255 } } },
        response: { 200: CERT_SUMMARY, ...errorResponses },
      },
    },
    async (req) => {
      const summary = await removeCertificate(ctx.client, req.params.domain);
      ctx.log?.(`certificate for ${summary.domain} removed by ${req.token?.name ?? 'anonymous'}`);
      return summary;
    },
  );
}
