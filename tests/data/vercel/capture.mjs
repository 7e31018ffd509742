// Capture real Vercel AI SDK (`ai`) OpenTelemetry spans as OTLP fixtures.
//
// Run from a scratch directory whose node_modules holds the pinned packages of
// one version (see tests/data/vercel/<version>/package.json and regen.sh):
//
//   node capture.mjs --out <dir> [--api generate|stream] [--name NAME]
//                    [--integration otel|otel-usage|legacy]   (ai@7 only)
//
// The script starts a fake OpenAI-compatible Chat Completions server on
// 127.0.0.1 (node:http), runs one plain generateText (or streamText) call and
// one two-step call with a local tool, and writes <name>.pb (serialized
// ExportTraceServiceRequest, from ProtobufTraceSerializer) and <name>.json
// (OTLP/JSON from JsonTraceSerializer: hex ids, integer enums, int64 as strings).
// No real LLM or network is used.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  JsonTraceSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';

// ---------------------------------------------------------------- arguments
const argv = process.argv.slice(2);
function arg(name, fallback) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
}
const readPkg = (name) =>
  JSON.parse(fs.readFileSync(path.join('node_modules', name, 'package.json'), 'utf8'));
const AI_VERSION = readPkg('ai').version;
const MAJOR = Number(AI_VERSION.split('.')[0]);
const INTEGRATION = arg('integration', MAJOR >= 7 ? 'otel' : 'builtin');
const API = arg('api', 'generate');
if (!['generate', 'stream'].includes(API)) throw new Error(`--api must be generate or stream`);
const defaultName =
  `vercel_ai_v${MAJOR}` +
  (INTEGRATION === 'otel' || INTEGRATION === 'builtin' ? '' : `_${INTEGRATION.replace('otel-', '')}`) +
  (API === 'stream' ? '_stream' : '');
const NAME = arg('name', defaultName);
const OUT = arg('out', '.');

// ------------------------------------------------------------- fake server
const REQUEST_MODEL = 'gpt-4o-mini';
const RESPONSE_MODEL = 'gpt-4o-mini-2024-07-18';
const CREATED = 1795314121; // fixed `created` so response timestamps are stable
const TOOL_CALL_ID = 'call_fixture_weather_1';

function usage(prompt, completion, cached, reasoning) {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function completion(id, message, finishReason, u) {
  return {
    id,
    object: 'chat.completion',
    created: CREATED,
    model: RESPONSE_MODEL,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
    usage: u,
    system_fingerprint: 'fp_fixture',
  };
}

// Streaming: the same completion as Chat Completions SSE chunks; the usage
// chunk is sent only when the client asks for it (stream_options.include_usage),
// as the real API does.
function sseChunks(full, includeUsage) {
  const base = { id: full.id, object: 'chat.completion.chunk', created: CREATED, model: RESPONSE_MODEL, system_fingerprint: 'fp_fixture' };
  const msg = full.choices[0].message;
  const chunk = (delta, finish = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const out = [chunk({ role: 'assistant', content: msg.tool_calls ? null : '', refusal: null })];
  if (msg.tool_calls) {
    msg.tool_calls.forEach((tc, index) => {
      out.push(chunk({ tool_calls: [{ index, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } }] }));
      out.push(chunk({ tool_calls: [{ index, function: { arguments: tc.function.arguments } }] }));
    });
  } else {
    // two content deltas
    const mid = Math.floor(msg.content.length / 2);
    out.push(chunk({ content: msg.content.slice(0, mid) }));
    out.push(chunk({ content: msg.content.slice(mid) }));
  }
  out.push(chunk({}, full.choices[0].finish_reason));
  if (includeUsage) out.push({ ...base, choices: [], usage: full.usage });
  return out;
}

const requests = [];
function answer(body) {
  const hasTools = Array.isArray(body.tools) && body.tools.length > 0;
  const hasToolResult = (body.messages ?? []).some((m) => m.role === 'tool');
  if (!hasTools) {
    // plain call: 21/9/4/3
    return completion(
      'chatcmpl-fixture-chat-1',
      { role: 'assistant', content: 'Hello! I am a fake model. 2+2=4.', refusal: null },
      'stop',
      usage(21, 9, 4, 3),
    );
  }
  if (!hasToolResult) {
    // agent step 1: tool call, 57/17/32/5
    return completion(
      'chatcmpl-fixture-tool-2',
      {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [
          {
            id: TOOL_CALL_ID,
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city": "Paris"}' },
          },
        ],
      },
      'tool_calls',
      usage(57, 17, 32, 5),
    );
  }
  // agent step 2: final text, 88/24/48/7
  const toolMsg = body.messages.find((m) => m.role === 'tool');
  let result = toolMsg.content;
  try {
    result = JSON.parse(result);
  } catch {}
  return completion(
    'chatcmpl-fixture-final-3',
    { role: 'assistant', content: `Here is the weather: ${result}`, refusal: null },
    'stop',
    usage(88, 24, 48, 7),
  );
}

const server = http.createServer((req, res) => {
  let data = '';
  req.on('data', (c) => (data += c));
  req.on('end', () => {
    let body = {};
    try {
      body = JSON.parse(data || '{}');
    } catch {}
    requests.push({ method: req.method, url: req.url, body });
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `unexpected ${req.method} ${req.url}` } }));
      return;
    }
    const full = answer(body);
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': 'req_fixture' });
      for (const c of sseChunks(full, body.stream_options?.include_usage === true)) {
        res.write(`data: ${JSON.stringify(c)}\n\n`);
      }
      res.end('data: [DONE]\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_fixture' });
    res.end(JSON.stringify(full));
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const baseURL = `http://127.0.0.1:${server.address().port}/v1`;

// ------------------------------------------------------------ OTel SDK
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'fixture-vercel-ai' }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
trace.setGlobalTracerProvider(provider);

if (MAJOR >= 7) {
  // v7: OpenTelemetry is no longer built into `ai`; it comes from @ai-sdk/otel.
  const otel = await import('@ai-sdk/otel');
  const integration =
    INTEGRATION === 'legacy'
      ? new otel.LegacyOpenTelemetry()
      : new otel.OpenTelemetry({ runtimeContext: true, usage: INTEGRATION === 'otel-usage' });
  ai.registerTelemetry(integration);
}

// ------------------------------------------------------------ scenario
const METADATA = { sessionId: 'sess-fixture-1', userId: 'user-42', tier: 'gold' };
const SYSTEM = 'You are a helpful assistant.';
// ai@4's @ai-sdk/openai 1.x only asks for streamed usage in 'strict' mode,
// which is what its default `openai` instance uses.
const openai = createOpenAI({
  baseURL,
  apiKey: 'sk-fixture-not-a-real-key',
  ...(MAJOR <= 4 ? { compatibility: 'strict' } : {}),
});
const model = openai.chat(REQUEST_MODEL); // Chat Completions API in every version

function telemetryOptions(functionId) {
  const t = { isEnabled: true, functionId, metadata: METADATA };
  if (MAJOR >= 7) {
    // v7 dropped `metadata` (passed above anyway, and ignored); per-call data
    // goes through runtimeContext, filtered by includeRuntimeContext.
    t.includeRuntimeContext = { sessionId: true, userId: true, tier: true };
    return { telemetry: t, runtimeContext: METADATA };
  }
  return { experimental_telemetry: t };
}

const getWeather = async ({ city }) => `Sunny, 21C in ${city}`;
const cityDescription = 'Get the current weather for a city.';
const weatherTool =
  MAJOR <= 4
    ? ai.tool({ description: cityDescription, parameters: z.object({ city: z.string() }), execute: getWeather })
    : ai.tool({ description: cityDescription, inputSchema: z.object({ city: z.string() }), execute: getWeather });

const systemOption = MAJOR >= 7 ? { instructions: SYSTEM } : { system: SYSTEM };
const twoSteps = MAJOR <= 4 ? { maxSteps: 2 } : { stopWhen: ai.stepCountIs(2) };

// generateText, or streamText consumed to the end; returns { text, steps }.
async function run(options) {
  if (API === 'generate') return ai.generateText(options);
  let error;
  const r = ai.streamText({ ...options, onError: ({ error: e }) => (error = e) });
  for await (const _ of r.textStream) {
  }
  if (error) throw error;
  return { text: await r.text, steps: await r.steps };
}

const fixtureTracer = trace.getTracer('fixture');
const results = await fixtureTracer.startActiveSpan('fixture.scenario', async (root) => {
  try {
    const plain = await run({
      model,
      ...systemOption,
      prompt: 'Say hello and compute 2+2.',
      ...telemetryOptions('greeting'),
    });
    const agent = await run({
      model,
      ...systemOption,
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: weatherTool },
      ...twoSteps,
      ...telemetryOptions('weather-agent'),
    });
    return { plain, agent };
  } finally {
    root.end();
  }
});
server.close();
await provider.forceFlush();

// ------------------------------------------------------------ checks
const calls = requests.map(
  (r) => `${r.method} ${r.url} model=${r.body.model}` + (r.body.stream ? ` stream=true stream_options=${JSON.stringify(r.body.stream_options ?? null)}` : ''),
);
if (requests.length !== 3 || requests.some((r) => r.body.model !== REQUEST_MODEL)) {
  throw new Error(`expected 3 chat completion requests, got:\n${calls.join('\n')}`);
}
if (results.agent.steps.length !== 2 || !results.agent.text.includes('Sunny, 21C in Paris')) {
  throw new Error(`agent run did not take the tool step: ${JSON.stringify(results.agent.text)}`);
}

// ------------------------------------------------------------ serialize
const spans = exporter.getFinishedSpans();
if (new Set(spans.map((s) => s.spanContext().traceId)).size !== 1) {
  throw new Error('spans are not in one trace');
}
const pb = ProtobufTraceSerializer.serializeRequest(spans);

// OTLP/JSON: JsonTraceSerializer already writes hex ids, integer enums and
// string timestamps; int64 attribute values come out as JS numbers, so write
// them as strings as the protobuf JSON mapping does.
const INT64_KEYS = new Set(['intValue', 'startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano']);
function int64AsString(v) {
  if (Array.isArray(v)) return v.map(int64AsString);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      o[k] = INT64_KEYS.has(k) && typeof x === 'number' ? String(x) : int64AsString(x);
    }
    return o;
  }
  return v;
}
const json = int64AsString(JSON.parse(new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans))));

fs.mkdirSync(OUT, { recursive: true });
fs.writeFileSync(path.join(OUT, `${NAME}.pb`), pb);
fs.writeFileSync(path.join(OUT, `${NAME}.json`), JSON.stringify(json, null, 2) + '\n');

console.log(
  `${NAME}: ai ${AI_VERSION}, @ai-sdk/openai ${readPkg('@ai-sdk/openai').version}` +
    (MAJOR >= 7 ? `, @ai-sdk/otel ${readPkg('@ai-sdk/otel').version} (${INTEGRATION})` : '') +
    `, ${API}Text, node ${process.version}: ${spans.length} spans -> ${path.join(OUT, NAME)}.{pb,json}`,
);
for (const c of calls) console.log(`  fake server: ${c}`);
