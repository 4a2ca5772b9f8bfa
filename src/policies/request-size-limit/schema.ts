import { Type } from '@sinclair/typebox'

export const RequestSizeLimitConfig = Type.Object(
  {
    maxBodyBytes: Type.Integer({
      minimum: 0,
      default: 1048576,
      description: 'Largest request body accepted on the route, in bytes; larger ones get 413.',
    }),
    maxQueryLength: Type.Integer({
      minimum: 0,
      default: 4096,
      description: 'Longest query string accepted, in characters; longer ones get 414.',
    }),
    maxHeaderCount: Type.Integer({
      minimum: 1,
      default: 100,
      description: 'Most request header fields accepted on the route; more get 431.',
    }),
    contentTypes: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), {
      default: {},
      description:
        'Per media type body limits in bytes (e.g. `application/json: 65536`), lower than maxBodyBytes.',
    }),
  },
  { additionalProperties: false, default: {} },
)
