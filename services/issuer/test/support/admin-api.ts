import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

import { postForm, type Credentials } from './oauth.js';

/** An answer of the admin API, its body parsed. */
export interface AdminResponse<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

interface OpenApiOperation {
  readonly responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

type OpenApiDocument = { paths: Record<string, Record<string, OpenApiOperation>> } & Record<string, unknown>;

/**
 * The admin API's OpenAPI document, checked against the OpenAPI 3.1 schema, and a checker of
 * answers against it: every answer a test receives through {@link AdminApi} must be one its
 * operation documents, with a body its schema accepts.
 */
export class OpenApiContract {
  readonly #ajv: Ajv2020;
  readonly #validators = new Map<string, ValidateFunction>();

  private constructor(readonly document: OpenApiDocument) {
    this.#ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(this.#ajv);
    this.#ajv.addSchema(document, 'openapi.json');
  }

  /** The document served at `url`, if it is a valid OpenAPI document; else throws with the validator's findings. */
  static async load(url: string): Promise<OpenApiContract> {
    const document = (await (await fetch(url)).json()) as OpenApiDocument;
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    if (!result.valid) throw new Error(`not a valid OpenAPI document: ${JSON.stringify(result.errors)}`);
    return new OpenApiContract(document);
  }

  /** The documented path templates that `path` (under the server URL) is an instance of. */
  #templates(path: string): string[] {
    return Object.keys(this.document.paths).filter((template) => new RegExp(`^${template.replace(/\{[^}]+\}/gu, '[^/]+')}$`, 'u').test(path));
  }

  #validator(key: string): ValidateFunction {
    let validate = this.#validators.get(key);
    if (validate === undefined) {
      validate = this.#ajv.compile({ $ref: key });
      this.#validators.set(key, validate);
    }
    return validate;
  }

  #problems(key: string, body: unknown): string[] {
    const validate = this.#validator(key);
    return validate(body) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ''}`);
  }

  /**
   * Problems of an answer against the document (empty: it conforms). Outside the documented
   * operations, only the API's error answers are: 405 on a documented path, 404 elsewhere.
   */
  check(method: string, path: string, status: number, body: unknown): string[] {
    const templates = this.#templates(path);
    const template = templates.find((candidate) => this.document.paths[candidate]?.[method] !== undefined);
    if (template === undefined) {
      const expected = templates.length > 0 ? 405 : 404;
      if (status !== expected) return [`${status} for an undocumented ${method.toUpperCase()} ${path} (expected ${expected})`];
      return this.#problems('openapi.json#/components/schemas/Error', body);
    }
    const operation = this.document.paths[template]?.[method];
    if (operation?.responses[String(status)] === undefined) return [`${status} is not a documented answer of ${method.toUpperCase()} ${template}`];
    const pointer = ['paths', template, method, 'responses', String(status), 'content', 'application/json', 'schema'].map((part) => part.replace(/~/gu, '~0').replace(/\//gu, '~1')).join('/');
    return this.#problems(`openapi.json#/${pointer}`, body);
  }
}

/** A caller of the admin API with a bearer token; every answer is checked against the OpenAPI document. */
export class AdminApi {
  /** Every answer that did not conform, as `METHOD path status: problems` (a test expects it empty). */
  readonly nonconforming: string[] = [];

  constructor(
    private readonly base: string,
    private readonly contract: OpenApiContract,
    public token: string,
  ) {}

  async call<T = Record<string, unknown>>(method: string, path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string>; token?: string } = {}): Promise<AdminResponse<T>> {
    const headers: Record<string, string> = { ...(options.token ?? this.token ? { authorization: `Bearer ${options.token ?? this.token}` } : {}), ...options.headers };
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.base}/admin/v1${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await response.text();
    const parsed = (text === '' ? undefined : JSON.parse(text)) as T;
    const route = path.split('?')[0] ?? path;
    const problems = this.contract.check(method.toLowerCase(), route, response.status, parsed);
    if (problems.length > 0) this.nonconforming.push(`${method} ${path} ${response.status}: ${problems.join('; ')}`);
    return { status: response.status, headers: response.headers, body: parsed };
  }
}

/** An access token for the admin API (client credentials, `resource` = the admin audience). */
export async function adminToken(issuer: string, client: Credentials, scope?: string): Promise<string> {
  const response = await postForm(issuer, { grant_type: 'client_credentials', resource: `${issuer}/admin`, ...(scope === undefined ? {} : { scope }) }, client);
  const body = (await response.json()) as { access_token?: string; error?: string };
  if (body.access_token === undefined) throw new Error(`no admin token: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}
