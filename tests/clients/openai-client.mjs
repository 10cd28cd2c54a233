// Drives the runtime's OpenAI-compatible API with the official openai SDK and prints what it got as
// JSON, for tests/DeepSeek.Api.Tests to check. Env: BASE_URL, API_KEY, MODEL, SCENARIO.
import OpenAI from "openai";
import Ajv from "ajv";

// A request's deadline is the whole scenario's budget: SCENARIO_BUDGET_MS when the test passes the one it
// gives this process (already scaled by TEST_TIME_SCALE), else 120 s scaled as tests/DeepSeek.Testing/TestTime.cs
// does. A hung request still fails the test, but one slowed by a loaded machine never fails before the
// scenario itself would (30 s a request did once, with sixty constrained requests on two oversubscribed
// cores; 120 s did once for a scenario of fifty calls given 600 s).
const timeScale = Math.max(1, Number(process.env.TEST_TIME_SCALE) || 1);
const budget = Number(process.env.SCENARIO_BUDGET_MS) || 120_000 * timeScale;
const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0, timeout: budget });
const model = process.env.MODEL;

const scenarios = {
  async chat() {
    const response = await client.chat.completions.create({
      model,
      messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello" }],
      max_tokens: 12,
      temperature: 0,
      user: "test-user",
    });
    return { content: response.choices[0].message.content, finish: response.choices[0].finish_reason, usage: response.usage };
  },
  async chatStream() {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello" }],
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = "";
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        content += choice.delta?.content ?? "";
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    return { content, finish, usage, chunks };
  },
  async completionsLogprobs() {
    const response = await client.completions.create({
      model,
      prompt: [[1, 2, 3, 4], [5, 6, 7]],
      max_tokens: 5,
      temperature: 0,
      logprobs: 2,
    });
    return {
      choices: response.choices.map((c) => ({ index: c.index, text: c.text, finish: c.finish_reason, logprobs: c.logprobs })),
      usage: response.usage,
    };
  },
  async models() {
    const page = await client.models.list();
    return { ids: page.data.map((m) => m.id) };
  },
  // models.retrieve: GET /v1/models/{id}.
  async retrieve() {
    const found = await client.models.retrieve(model);
    let missing = null;
    try {
      await client.models.retrieve("no-such-model");
    } catch (error) {
      missing = { status: error.status, code: error.code, param: error.param };
    }
    return { id: found.id, object: found.object, missing };
  },
  // The fields common clients add, as the SDK sends them: at values that change nothing the answer is
  // the plain one; values that would change it are refused, each naming its field.
  async lenientChat() {
    const base = { model, messages: [{ role: "user", content: "hello" }], max_tokens: 4, temperature: 0 };
    const plain = await client.chat.completions.create(base);
    const lenient = await client.chat.completions.create({
      ...base,
      logit_bias: null,
      response_format: { type: "text" },
      parallel_tool_calls: false,
      user: "user-1234",
      service_tier: "auto",
      store: false,
      metadata: { purpose: "test" },
    });
    const refused = {};
    const unsupportedSchema = { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "^a" } } };
    for (const [name, value] of [["response_format", unsupportedSchema], ["store", true], ["logit_bias", { 5: 10 }]]) {
      try {
        await client.chat.completions.create({ ...base, [name]: value });
        refused[name] = null;
      } catch (error) {
        refused[name] = { status: error.status, param: error.param, code: error.code };
      }
    }
    return { plain: plain.choices[0].message.content, lenient: lenient.choices[0].message.content, refused };
  },
  // A chat turn whose content spells the template's control tokens: they must stay text.
  async forgedTurn() {
    const response = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: process.env.CONTENT }],
      max_tokens: 1,
      temperature: 0,
    });
    return { usage: response.usage };
  },
  // A request the server fails mid-stream: the SDK must raise the server's error, not end quietly.
  async failingStream() {
    const outcome = {};
    try {
      const stream = await client.completions.create({ model, prompt: JSON.parse(process.env.PROMPT_IDS), max_tokens: 8, stream: true });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
      outcome.completed = text;
    } catch (error) {
      outcome.error = { message: error.message, code: error.code ?? error.error?.code ?? null, type: error.type ?? error.error?.type ?? null };
    }
    try {
      await client.completions.create({ model, prompt: JSON.parse(process.env.PROMPT_IDS), max_tokens: 8 });
    } catch (error) {
      outcome.whole = { status: error.status, code: error.code, message: error.message };
    }
    return outcome;
  },
  async embeddings() {
    // The SDK asks for base64 and decodes it when no encoding_format is given.
    const base64 = await client.embeddings.create({ model, input: ["hello", "world"] });
    const floats = await client.embeddings.create({ model, input: [[1, 2, 3]], encoding_format: "float" });
    return {
      base64: base64.data.map((d) => Array.from(d.embedding)),
      floats: floats.data.map((d) => d.embedding),
      usage: base64.usage,
    };
  },
  // response_format json_schema / json_object on many prompts, streamed and whole: every output must
  // parse and validate against its schema (ajv), the constraint and not the random-weights model
  // guaranteeing it.
  async structured() {
    const ajv = new Ajv({ strict: false });
    const results = [];
    const jobs = structuredPrompts(Number(process.env.PROMPTS ?? 60));
    await pool(jobs, 6, async (job) => results.push(await structuredCall(ajv, job)));
    return summarize(results);
  },
  // Constrained and free requests at once, in the same batches.
  async structuredMixed() {
    const ajv = new Ajv({ strict: false });
    const jobs = structuredPrompts(16);
    const outcomes = await Promise.all([
      ...jobs.map((job) => structuredCall(ajv, job)),
      ...Array.from({ length: 16 }, async (_, i) => {
        const response = await client.chat.completions.create({
          model, messages: [{ role: "user", content: `free text ${i}` }], max_tokens: 24, temperature: 1, seed: i,
        });
        return { free: true, finish: response.choices[0].finish_reason, tokens: response.usage.completion_tokens };
      }),
    ]);
    return { constrained: summarize(outcomes.filter((o) => !o.free)), free: outcomes.filter((o) => o.free) };
  },
  // Bad response formats: each a 400 in OpenAI's error shape, and the server answers the next call.
  async structuredRefusals() {
    let deep = { type: "string" };
    for (let i = 0; i < 20; i++) deep = { type: "array", items: deep };
    const cases = {
      pattern: { type: "json_schema", json_schema: { name: "p", schema: { type: "object", properties: { a: { type: "string", pattern: "^a" } } } } },
      format: { type: "json_schema", json_schema: { name: "f", schema: { type: "string", format: "date-time" } } },
      ref: { type: "json_schema", json_schema: { name: "r", schema: { $defs: { a: { type: "string" } }, $ref: "#/$defs/a" } } },
      missingSchema: { type: "json_schema", json_schema: { name: "m" } },
      unknownType: { type: "xml" },
      schemaNotAnObject: { type: "json_schema", json_schema: { name: "n", schema: 7 } },
      badName: { type: "json_schema", json_schema: { name: "has space", schema: { type: "string" } } },
      unknownMember: { type: "json_schema", json_schema: { name: "u", schema: { type: "string" }, extra: 1 } },
      deepNesting: { type: "json_schema", json_schema: { name: "d", schema: deep } },
      hugeEnum: { type: "json_schema", json_schema: { name: "e", schema: { enum: Array.from({ length: 20000 }, (_, i) => `v${i}`) } } },
      wideAnyOf: { type: "json_schema", json_schema: { name: "w", schema: { anyOf: Array.from({ length: 100 }, () => ({ type: "string" })) } } },
    };
    const outcomes = {};
    for (const [name, format] of Object.entries(cases)) {
      let error = null;
      try {
        await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 8, response_format: format });
      } catch (e) {
        error = { status: e.status, type: e.type ?? e.error?.type, param: e.param, code: e.code, message: e.message };
      }
      const after = await client.chat.completions.create({ model, messages: [{ role: "user", content: "still there?" }], max_tokens: 2 });
      outcomes[name] = { error, servedAfter: after.choices.length === 1 };
    }
    return outcomes;
  },
  // Forced tool calls (tool_choice "required" with and without parallel_tool_calls, and a named
  // function) on many prompts, streamed and whole: every call must parse, name an offered function and
  // carry arguments that validate against that function's schema (ajv).
  async toolsForced() {
    const ajv = new Ajv({ strict: false });
    const results = [];
    // Sixteen at a time: the engine batches them, so the run takes a fraction of one-by-one.
    await pool(toolJobs(Number(process.env.PROMPTS ?? 50)), 16, async (job) => results.push(await toolCall(ajv, job)));
    return {
      count: results.length,
      valid: results.filter((r) => r.valid).length,
      streamed: results.filter((r) => r.stream).length,
      modes: [...new Set(results.map((r) => r.mode))],
      finishes: [...new Set(results.map((r) => r.finish))],
      calls: results.reduce((sum, r) => sum + r.calls.length, 0),
      mostCalls: Math.max(...results.map((r) => r.calls.length)),
      mostCallsStreamed: Math.max(...results.filter((r) => r.stream).map((r) => r.calls.length)),
      turnsOfSeveralCalls: results.filter((r) => r.calls.length > 1).map((r) => `${r.index}${r.stream ? "s" : ""}:${r.calls.length}`),
      functions: [...new Set(results.flatMap((r) => r.calls.map((c) => c.name)))],
      failures: results.filter((r) => !r.valid).slice(0, 5),
    };
  },
  // A whole round trip: a forced call, its result sent back as a tool message, and the next turn
  // (auto: the model may answer or call again), streamed and whole; then a forced call after it.
  async toolRoundTrip() {
    const ajv = new Ajv({ strict: false });
    const user = { role: "user", content: "What is the weather in Paris?" };
    const first = await client.chat.completions.create({ model, messages: [user], tools: toolFunctions, tool_choice: { type: "function", function: { name: "get_weather" } }, parallel_tool_calls: false, max_tokens: 320, seed: 3 });
    const assistant = first.choices[0].message;
    const messages = [
      user,
      assistant,
      // A tool result may be text parts, as a user message's may.
      ...assistant.tool_calls.map((call) => ({ role: "tool", tool_call_id: call.id, content: [{ type: "text", text: JSON.stringify({ temperature: 18, unit: "C" }) }] })),
    ];
    const after = await client.chat.completions.create({ model, messages, tools: toolFunctions, max_tokens: 16, seed: 4 });
    let streamed = "";
    let streamedFinish = null;
    for await (const chunk of await client.chat.completions.create({ model, messages, tools: toolFunctions, max_tokens: 16, seed: 4, stream: true })) {
      for (const choice of chunk.choices) {
        streamed += choice.delta?.content ?? "";
        if (choice.finish_reason) streamedFinish = choice.finish_reason;
      }
    }
    const again = await toolCall(ajv, { index: 0, mode: "required", parallel: false, stream: false, temperature: 1, seed: 5, max_tokens: 320, messages: [...messages, { role: "user", content: "And in Rome?" }] });
    return {
      firstCalls: assistant.tool_calls.length,
      firstFinish: first.choices[0].finish_reason,
      after: { finish: after.choices[0].finish_reason, content: after.choices[0].message.content, calls: after.choices[0].message.tool_calls ?? [], usage: after.usage },
      streamed: { finish: streamedFinish, content: streamed },
      again,
    };
  },
  // tool_choice auto and none on the random-weights model: its own text, answered as content.
  async toolAuto() {
    const outcomes = [];
    for (const tool_choice of ["auto", "none"]) {
      for (const stream of [false, true]) {
        const request = { model, messages: [{ role: "user", content: "hello" }], tools: toolFunctions, tool_choice, max_tokens: 12, temperature: 0 };
        if (stream) {
          let content = "";
          let finish = null;
          let toolDeltas = 0;
          for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
            for (const choice of chunk.choices) {
              content += choice.delta?.content ?? "";
              toolDeltas += choice.delta?.tool_calls?.length ?? 0;
              if (choice.finish_reason) finish = choice.finish_reason;
            }
          }
          outcomes.push({ tool_choice, stream, content, finish, calls: toolDeltas });
        } else {
          const response = await client.chat.completions.create(request);
          const choice = response.choices[0];
          outcomes.push({ tool_choice, stream, content: choice.message.content, finish: choice.finish_reason, calls: choice.message.tool_calls?.length ?? 0 });
        }
      }
    }
    return outcomes;
  },
  // Bad tool requests: each a 400 in OpenAI's error shape naming the field.
  async toolRefusals() {
    const user = { role: "user", content: "hi" };
    const call = { id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\",\"unit\":\"C\"}" } };
    const cases = {
      toolWithoutId: { messages: [user, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", content: "18C" }], tools: toolFunctions },
      toolUnknownId: { messages: [user, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: "call_2", content: "18C" }], tools: toolFunctions },
      toolWithoutCall: { messages: [user, { role: "tool", tool_call_id: "call_1", content: "18C" }] },
      unknownFunction: { messages: [user], tools: toolFunctions, tool_choice: { type: "function", function: { name: "launch" } } },
      choiceWithoutTools: { messages: [user], tool_choice: "required" },
      unknownChoice: { messages: [user], tools: toolFunctions, tool_choice: "always" },
      badSchema: { messages: [user], tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { a: { type: "string", format: "email" } } } } }] },
      notAnObject: { messages: [user], tools: [{ type: "function", function: { name: "f", parameters: { type: "array" } } }] },
      badName: { messages: [user], tools: [{ type: "function", function: { name: "get weather" } }] },
      badType: { messages: [user], tools: [{ type: "retrieval", function: { name: "f" } }] },
      sameNameTwice: { messages: [user], tools: [toolFunctions[0], toolFunctions[0]] },
      requiredWithJson: { messages: [user], tools: toolFunctions, tool_choice: "required", response_format: { type: "json_object" } },
    };
    const outcomes = {};
    for (const [name, body] of Object.entries(cases)) {
      let error = null;
      try {
        await client.chat.completions.create({ model, max_tokens: 8, ...body });
      } catch (e) {
        error = { status: e.status, type: e.type ?? e.error?.type, param: e.param, code: e.code, message: e.message };
      }
      outcomes[name] = error;
    }
    return outcomes;
  },
};

const toolFunctions = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather of a city",
      parameters: { type: "object", properties: { city: { type: "string" }, unit: { enum: ["C", "F"] }, days: { type: "integer" } }, required: ["city", "unit"], additionalProperties: false },
    },
  },
  {
    type: "function",
    function: {
      name: "create_event",
      description: "Put an event in the calendar",
      parameters: {
        type: "object",
        properties: {
          title: { type: "string" },
          attendees: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 3 },
          when: { type: "object", properties: { day: { type: "integer" }, hour: { type: "integer" } }, required: ["day", "hour"], additionalProperties: false },
          online: { type: "boolean" },
          room: { anyOf: [{ type: "string" }, { type: "null" }] },
        },
        required: ["title", "attendees", "when"],
        additionalProperties: false,
      },
    },
  },
  { type: "function", function: { name: "get_time", description: "The time now" } },
];

// Functions whose arguments have no free text: a call is short and of bounded length, so a random
// model's turn has room for several (free strings run until the budget closes them).
const shortFunctions = [
  toolFunctions[2],
  {
    type: "function",
    function: {
      name: "set_light",
      description: "Switch a light",
      parameters: { type: "object", properties: { on: { type: "boolean" }, level: { enum: [1, 2, 3] } }, required: ["on", "level"], additionalProperties: false },
    },
  },
];

function toolJobs(count) {
  const modes = ["required", "requiredParallel", "named"];
  return Array.from({ length: count }, (_, i) => ({
    index: i,
    mode: modes[i % 3] === "named" ? "named" : "required",
    parallel: modes[i % 3] === "requiredParallel",
    named: modes[i % 3] === "named" ? toolFunctions[Math.floor(i / 3) % 2].function.name : null,
    stream: Math.floor(i / 3) % 2 === 1,
    temperature: i % 4 === 0 ? 0 : 1,
    seed: 100 + i,
    // Calls are long on this byte-level vocabulary (the markers alone are about 150 tokens): the shortest
    // get_time call is 156 tokens, get_weather's 178, create_event's 212 (a named one gets room for it; under
    // "required" the budget leaves out the functions that no longer fit), and a parallel turn of short
    // calls has room for two (156 + 1 + 122). Strings run on until the budget closes them.
    tools: modes[i % 3] === "requiredParallel" ? shortFunctions : toolFunctions,
    max_tokens: modes[i % 3] === "requiredParallel" ? 300 : modes[i % 3] === "named" && Math.floor(i / 3) % 2 === 1 ? 230 : 200,
    messages: [{ role: "user", content: `Request ${i}: ${["weather in Oslo", "plan a meeting", "what time is it"][i % 3]}` }],
  }));
}

// One forced-call request; its calls checked against the offered functions' schemas.
async function toolCall(ajv, job) {
  const tool_choice = job.named ? { type: "function", function: { name: job.named } } : "required";
  const tools = job.tools ?? toolFunctions;
  const request = { model, messages: job.messages, tools, tool_choice, parallel_tool_calls: job.parallel, max_tokens: job.max_tokens, temperature: job.temperature, seed: job.seed };
  let calls = [];
  let content = null;
  let finish = null;
  let firstChunks = [];
  // A generation of a few hundred tokens behind others in the queue: a longer deadline than a short call's.
  const options = { timeout: 300_000 * timeScale };
  if (job.stream) {
    const byIndex = new Map();
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true }, options)) {
      for (const choice of chunk.choices) {
        if (choice.delta?.content) content = (content ?? "") + choice.delta.content;
        for (const piece of choice.delta?.tool_calls ?? []) {
          if (!byIndex.has(piece.index)) {
            byIndex.set(piece.index, { id: piece.id, type: piece.type, name: piece.function?.name, arguments: "" });
            firstChunks.push(Boolean(piece.id && piece.type === "function" && piece.function?.name));
          }
          byIndex.get(piece.index).arguments += piece.function?.arguments ?? "";
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    calls = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
  } else {
    const response = await client.chat.completions.create(request, options);
    const message = response.choices[0].message;
    content = message.content;
    finish = response.choices[0].finish_reason;
    calls = (message.tool_calls ?? []).map((c) => ({ id: c.id, type: c.type, name: c.function.name, arguments: c.function.arguments }));
  }
  const problems = [];
  if (finish !== "tool_calls") problems.push(`finish_reason ${finish}`);
  if (content !== null && content !== "") problems.push(`content ${JSON.stringify(content)}`);
  if (calls.length === 0) problems.push("no call");
  if (!job.parallel && calls.length > 1) problems.push(`${calls.length} calls without parallel_tool_calls`);
  if (firstChunks.some((ok) => !ok)) problems.push("a call's first chunk lacks its id, type or name");
  for (const call of calls) {
    if (!/^call_[A-Za-z0-9]+$/.test(call.id ?? "")) problems.push(`id ${call.id}`);
    if (call.type !== "function") problems.push(`type ${call.type}`);
    if (job.named && call.name !== job.named) problems.push(`called ${call.name}, not ${job.named}`);
    const spec = tools.find((t) => t.function.name === call.name);
    if (!spec) {
      problems.push(`unknown function ${call.name}`);
      continue;
    }
    const schema = spec.function.parameters ?? { type: "object", properties: {}, additionalProperties: false };
    try {
      const validate = ajv.getSchema(call.name) ?? (ajv.addSchema(schema, call.name), ajv.getSchema(call.name));
      if (!validate(JSON.parse(call.arguments))) problems.push(`${call.name}: ${ajv.errorsText(validate.errors)}`);
    } catch (error) {
      problems.push(`${call.name}: ${error.message} in ${call.arguments}`);
    }
  }
  return { index: job.index, mode: job.mode, parallel: job.parallel, stream: job.stream, finish, valid: problems.length === 0, problems, calls };
}

const structuredSchemas = [
  { name: "person", schema: { type: "object", properties: { name: { type: "string" }, age: { type: "integer" }, email: { type: "string" } }, required: ["name", "age"], additionalProperties: false } },
  { name: "order", schema: { type: "object", properties: { id: { type: "integer" }, items: { type: "array", items: { type: "object", properties: { sku: { type: "string" }, qty: { type: "integer" }, price: { type: "number" } }, required: ["sku", "qty", "price"], additionalProperties: false }, minItems: 1, maxItems: 3 }, status: { enum: ["open", "paid", "shipped"] } }, required: ["id", "items", "status"], additionalProperties: false } },
  { name: "flags", schema: { type: "object", properties: { on: { type: "boolean" }, nothing: { type: "null" }, level: { anyOf: [{ type: "integer" }, { type: "string" }] }, kind: { const: "flag" } }, required: ["on", "nothing", "level", "kind"], additionalProperties: false } },
  { name: "list", schema: { type: "array", items: { type: "number" }, minItems: 2, maxItems: 4 } },
  { name: "nested", schema: { type: "object", properties: { outer: { type: "object", properties: { inner: { type: "object", properties: { v: { type: ["string", "null"] } }, required: ["v"], additionalProperties: false } }, required: ["inner"], additionalProperties: false } }, required: ["outer"], additionalProperties: false } },
  { name: "choice", schema: { enum: ["yes", "no", 1, null, { a: [true] }] } },
  { name: "object", jsonObject: true, schema: { type: "object" } },
];

function structuredPrompts(count) {
  return Array.from({ length: count }, (_, i) => ({
    index: i,
    spec: structuredSchemas[i % structuredSchemas.length],
    stream: i % 2 === 1,
    temperature: i % 3 === 0 ? 0 : 1,
    seed: i,
    max_tokens: 80 + (i % 4) * 16, // every schema's shortest document fits (order's is 63 bytes)
    content: `Answer as JSON, request ${i}: ${["describe a person", "an order", "some flags", "numbers", "a nested thing", "pick one", "anything"][i % 7]}`,
  }));
}

async function structuredCall(ajv, job) {
  const response_format = job.spec.jsonObject
    ? { type: "json_object" }
    : { type: "json_schema", json_schema: { name: job.spec.name, schema: job.spec.schema, strict: true } };
  const request = { model, messages: [{ role: "user", content: job.content }], max_tokens: job.max_tokens, temperature: job.temperature, seed: job.seed, response_format };
  let content = "";
  let finish = null;
  if (job.stream) {
    const stream = await client.chat.completions.create({ ...request, stream: true });
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        content += choice.delta?.content ?? "";
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  } else {
    const response = await client.chat.completions.create(request);
    content = response.choices[0].message.content;
    finish = response.choices[0].finish_reason;
  }
  let valid = false;
  let problem = null;
  try {
    const value = JSON.parse(content);
    const validate = ajv.getSchema(job.spec.name) ?? (ajv.addSchema(job.spec.schema, job.spec.name), ajv.getSchema(job.spec.name));
    valid = validate(value);
    if (!valid) problem = ajv.errorsText(validate.errors);
  } catch (error) {
    problem = error.message;
  }
  return { index: job.index, schema: job.spec.name, stream: job.stream, finish, valid, problem, content };
}

function summarize(results) {
  return {
    count: results.length,
    valid: results.filter((r) => r.valid).length,
    streamed: results.filter((r) => r.stream).length,
    finishes: [...new Set(results.map((r) => r.finish))],
    schemas: [...new Set(results.map((r) => r.schema))],
    failures: results.filter((r) => !r.valid || r.finish !== "stop").slice(0, 5),
  };
}

async function pool(items, width, work) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

const scenario = scenarios[process.env.SCENARIO];
if (!scenario) {
  console.error(`unknown SCENARIO '${process.env.SCENARIO}'; one of ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await scenario()));
} catch (error) {
  console.error(`${error.status ?? ""} ${error.message}`);
  process.exit(1);
}
