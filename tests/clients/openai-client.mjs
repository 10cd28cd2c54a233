// Drives the runtime's OpenAI-compatible API with the official openai SDK and prints what it got as
// JSON, for tests/DeepSeek.Api.Tests to check. Env: BASE_URL, API_KEY, MODEL, SCENARIO.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0, timeout: 30_000 });
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
    for (const [name, value] of [["response_format", { type: "json_object" }], ["store", true], ["logit_bias", { 5: 10 }]]) {
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
};

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
