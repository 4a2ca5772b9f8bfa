import { Type } from '@sinclair/typebox'

export const BanConfig = Type.Object({}, { additionalProperties: false })
