using System.Threading.Channels;
using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Sampling;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;

namespace DeepSeek.Engine.Execution;

/// <summary>Everything the engine thread keeps for one request besides what the scheduler holds.</summary>
internal sealed class ActiveRequest(
    EngineRequest request,
    RequestSampler sampler,
    OutputTextAssembler assembler,
    Channel<TokenEvent> output,
    AdmissionTicket ticket,
    RequestTimings timings,
    CancellationToken cancellation)
{
    public EngineRequest Request { get; } = request;
    public RequestSampler Sampler { get; } = sampler;
    public OutputTextAssembler Assembler { get; } = assembler;
    public ChannelWriter<TokenEvent> Output { get; } = output.Writer;
    public ChannelReader<TokenEvent> Events { get; } = output.Reader;
    public AdmissionTicket Ticket { get; } = ticket;
    public RequestTimings Timings { get; } = timings;
    public CancellationToken Cancellation { get; } = cancellation;
    public CancellationTokenRegistration Registration { get; set; }
    public bool Scheduled { get; set; }
}
