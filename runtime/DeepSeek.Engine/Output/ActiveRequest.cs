using System.Threading.Channels;
using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;

namespace DeepSeek.Engine.Output;

/// <summary>
/// Everything kept for one request besides what the scheduler holds: its output side (text assembly,
/// the stream to the client, timings) and its place in admission. Created by the client at
/// admission, then touched by the engine thread only.
/// </summary>
internal sealed class ActiveRequest(
    EngineRequest request,
    OutputTextAssembler assembler,
    Channel<TokenEvent> output,
    AdmissionTicket ticket,
    RequestTimings timings,
    CancellationToken cancellation)
{
    public EngineRequest Request { get; } = request;
    public OutputTextAssembler Assembler { get; } = assembler;
    public ChannelWriter<TokenEvent> Output { get; } = output.Writer;
    public ChannelReader<TokenEvent> Events { get; } = output.Reader;
    public AdmissionTicket Ticket { get; } = ticket;
    public RequestTimings Timings { get; } = timings;
    public CancellationToken Cancellation { get; } = cancellation;
    public CancellationTokenRegistration Registration { get; set; }
    public bool Scheduled { get; set; }
}
