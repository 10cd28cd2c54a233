namespace DeepSeek.Runtime.Serving;

/// <summary>A request the backend will not run; the subclasses say why and the APIs map each to a status.</summary>
public abstract class InferenceRejectedException(string message) : Exception(message);
