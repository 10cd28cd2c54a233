namespace DeepSeek.Runtime.Serving;

public enum ChatRole
{
    System,
    User,
    Assistant,
}
