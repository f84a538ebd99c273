import { IncomingMessage } from 'node:http';

import { format } from 'node:util';

import { diag, DiagLogLevel, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

import type { Logger } from './logger.js';
import { routeOf } from './metrics.js';

/** Paths probed or scraped all the time: no span (they would drown the token requests). */
const UNTRACED: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

export interface Tracing {
  /** Exports the spans still buffered and stops. */
  shutdown(): Promise<void>;
}

const pathOf = (url: string | undefined) => (url ?? '/').split('?', 1)[0] ?? '/';

/**
 * OpenTelemetry traces over OTLP/HTTP (JSON) to `endpoint` + `/v1/traces`: a server span per
 * HTTP request (named by its route, e.g. `POST /token`) and a span per PostgreSQL query made
 * while serving one (its SQL text, never its parameter values). Imported by main.ts only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, and before the modules it instruments are loaded: `pg`
 * and `http` are patched as knex and express require them.
 */
export function startTracing(options: { readonly endpoint: string; readonly serviceName: string; readonly logger: Logger }): Tracing {
  // the SDK's own warnings and errors (an export that failed: the collector is down, say) as the issuer's JSON lines
  const line = (...args: unknown[]) => options.logger.warn({ component: 'opentelemetry' }, format(...args));
  const quiet = () => undefined;
  diag.setLogger({ error: line, warn: line, info: quiet, debug: quiet, verbose: quiet }, DiagLogLevel.WARN);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/u, '')}/v1/traces` }))],
  });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED.has(pathOf(req.url)),
        requestHook: (span: Span, request) => {
          // only the server side: outgoing requests (a client's jwks_uri) keep the instrumentation's name
          if (!(request instanceof IncomingMessage)) return;
          const route = routeOf(pathOf(request.url));
          span.updateName(`${request.method ?? 'GET'} ${route}`);
          span.setAttribute('http.route', route);
        },
      }),
      // background work (sweeps, key reloads) makes no root spans of its own
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
    ],
  });
  return { shutdown: () => provider.shutdown() };
}
