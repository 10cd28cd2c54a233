namespace DeepSeek.Operator.Autoscaling;

public enum ScalingDirection
{
    None,
    Up,
    Down,
}
