// Drives the runtime's gRPC API with @grpc/grpc-js on the project's own .proto and prints JSON.
// Env: GRPC_ADDRESS, API_KEY, PROTO, SCENARIO (generate | loadUntilWaiting | health | modelInfo |
// topLogprobsWithoutLogprobs | emptyTokenIds | failingGenerate).
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const address = process.env.GRPC_ADDRESS;
const credentials = grpc.credentials.createInsecure();
const definition = protoLoader.loadSync(process.env.PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const proto = grpc.loadPackageDefinition(definition);

// A call's deadline is the whole scenario's budget (the 120 s the tests give this process, scaled by
// TEST_TIME_SCALE as tests/DeepSeek.Testing/TestTime.cs does), so a loaded machine slows a call without failing it first.
const timeScale = Math.max(1, Number(process.env.TEST_TIME_SCALE) || 1);
function deadline() {
  return new Date(Date.now() + 120_000 * timeScale);
}

const scenarios = {
  generate() {
    const client = new proto.deepseek.runtime.v1.Inference(address, credentials);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${process.env.API_KEY}`);
    return new Promise((resolve, reject) => {
      const tokenIds = [];
      let text = "";
      let finish = null;
      let usage = null;
      const call = client.Generate(
        { token_ids: { ids: JSON.parse(process.env.PROMPT_IDS) }, sampling: { temperature: 0, max_tokens: Number(process.env.MAX_TOKENS) }, json_schema: process.env.JSON_SCHEMA ?? "" },
        metadata,
        { deadline: deadline() });
      call.on("data", (response) => {
        for (const token of response.tokens) tokenIds.push(token.token_id);
        text += response.text_delta;
        if (response.finish_reason) {
          finish = response.finish_reason;
          usage = response.usage;
        }
      });
      call.on("error", reject);
      call.on("end", () => resolve({ tokenIds, text, finish, usage }));
    });
  },
  // Polls GetLoad (open without a key, as the autoscaler reads it) until waiting > 0 or 30 s (scaled) pass; prints the last report.
  async loadUntilWaiting() {
    const client = new proto.deepseek.runtime.v1.Inference(address, credentials);
    const getLoad = () => new Promise((resolve, reject) =>
      client.GetLoad({}, new grpc.Metadata(), { deadline: deadline() }, (error, response) => (error ? reject(error) : resolve(response))));
    const end = Date.now() + 30_000 * timeScale;
    let report = await getLoad();
    while (report.waiting <= 0 && Date.now() < end) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      report = await getLoad();
    }
    return report;
  },
  modelInfo() {
    const client = new proto.deepseek.runtime.v1.Inference(address, credentials);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${process.env.API_KEY}`);
    return new Promise((resolve, reject) =>
      client.GetModelInfo({}, metadata, { deadline: deadline() }, (error, response) => (error ? reject(error) : resolve(response))));
  },
  // Generate with top_logprobs but not logprobs: refused as HTTP refuses it.
  topLogprobsWithoutLogprobs() {
    const client = new proto.deepseek.runtime.v1.Inference(address, credentials);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${process.env.API_KEY}`);
    return new Promise((resolve) => {
      const call = client.Generate({ token_ids: { ids: [1, 2, 3] }, sampling: { max_tokens: 2, top_logprobs: 3 } }, metadata, { deadline: deadline() });
      call.on("data", () => {});
      call.on("error", (error) => resolve({ code: grpc.status[error.code], details: error.details }));
      call.on("end", () => resolve({ code: "OK" }));
    });
  },
  // Generate with token_ids set but empty: refused naming the field sent.
  emptyTokenIds() {
    const client = new proto.deepseek.runtime.v1.Inference(address, credentials);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${process.env.API_KEY}`);
    return new Promise((resolve) => {
      const call = client.Generate({ token_ids: { ids: [] }, sampling: { max_tokens: 2 } }, metadata, { deadline: deadline() });
      call.on("data", () => {});
      call.on("error", (error) => resolve({ code: grpc.status[error.code], details: error.details }));
      call.on("end", () => resolve({ code: "OK" }));
    });
  },
  // A generation the server fails: the stream ends with the server's status and message.
  failingGenerate() {
    const client = new proto.deepseek.runtime.v1.Inference(address, credentials);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${process.env.API_KEY}`);
    return new Promise((resolve) => {
      let tokens = 0;
      const call = client.Generate({ token_ids: { ids: JSON.parse(process.env.PROMPT_IDS) }, sampling: { max_tokens: 8 } }, metadata, { deadline: deadline() });
      call.on("data", (response) => { tokens += response.tokens.length; });
      call.on("error", (error) => resolve({ tokens, code: grpc.status[error.code], details: error.details, errorCode: error.metadata.get("error-code")[0] ?? null }));
      call.on("end", () => resolve({ tokens, code: "OK" }));
    });
  },
  health() {
    const health = new grpc.Client(address, credentials);
    const check = health.makeUnaryRequest.bind(health);
    // grpc.health.v1 is not in the project's proto; a hand-written codec for its two tiny messages.
    // HealthCheckRequest { string service = 1; } with SERVICE from the environment ("" = the whole server).
    const service = Buffer.from(process.env.SERVICE ?? "", "utf8");
    const serialize = () => (service.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, service.length]), service]));
    const deserialize = (buffer) => ({ status: buffer.length >= 2 && buffer[0] === 0x08 ? buffer[1] : 0 });
    return new Promise((resolve, reject) => {
      check("/grpc.health.v1.Health/Check", serialize, deserialize, {}, new grpc.Metadata(), { deadline: deadline() }, (error, response) => {
        if (error) reject(error);
        else resolve({ status: ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"][response.status] });
      });
    });
  },
};

const scenario = scenarios[process.env.SCENARIO];
if (!scenario) {
  console.error(`unknown SCENARIO '${process.env.SCENARIO}'`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await scenario()));
  process.exit(0);
} catch (error) {
  console.error(`${error.code ?? ""} ${error.message}`);
  process.exit(1);
}
