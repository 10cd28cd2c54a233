namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed record ModelList(List<ModelList.Model> Data)
{
    public string Object => "list";

    internal sealed record Model(string Id, long Created, string OwnedBy, int MaxModelLen, string Architecture)
    {
        public string Object => "model";
    }
}
