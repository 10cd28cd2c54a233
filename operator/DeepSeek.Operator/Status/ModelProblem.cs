namespace DeepSeek.Operator.Status;

/// <summary>Why a model is not as asked, for a person: a condition reason (CamelCase, alerts match on it) and a readable message.</summary>
public sealed record ModelProblem(string Reason, string Message);
