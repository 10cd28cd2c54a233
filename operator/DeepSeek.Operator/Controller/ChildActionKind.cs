namespace DeepSeek.Operator.Controller;

public enum ChildActionKind
{
    Create,
    Update,
    Delete,
}
