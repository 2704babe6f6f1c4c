//! [`Op`]: every differentiable operation the tape can record, with what its
//! backward rule needs to remember, and [`OpKind`], the op's name alone.

/// Declares [`OpKind`] and its complete list [`OpKind::ALL`] from one list, so
/// the list can never miss a kind.
macro_rules! op_kinds {
    ($($kind:ident => $name:literal,)*) => {
        /// The kind of a recorded op, without its data. Every kind has a
        /// backward rule in `backward.rs`, a forward (JVP) rule in `jvp.rs`
        /// and a gradcheck entry in `registry.rs`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $(
                #[doc = concat!("The `", $name, "` op.")]
                $kind,
            )*
        }

        impl OpKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$kind,)*];

            /// The kind's name, as used by the registry and the CLI.
            pub fn name(self) -> &'static str {
                match self {
                    $(OpKind::$kind => $name,)*
                }
            }
        }
    };
}

op_kinds! {
    Neg => "neg", Abs => "abs", Exp => "exp", Log => "log", Sqrt => "sqrt",
    Rsqrt => "rsqrt", Square => "square", Recip => "recip", Relu => "relu",
    LeakyRelu => "leaky_relu", Sigmoid => "sigmoid", Tanh => "tanh", Gelu => "gelu",
    Silu => "silu", Sin => "sin", Cos => "cos", Clamp => "clamp",
    AddScalar => "add_scalar", MulScalar => "mul_scalar", PowScalar => "pow_scalar",
    Add => "add", Sub => "sub", Mul => "mul", Div => "div", Pow => "pow",
    Maximum => "maximum", Minimum => "minimum", Where => "where",
    Matmul => "matmul",
    Sum => "sum", Max => "max", Min => "min", LogSumExp => "logsumexp",
    Softmax => "softmax", LogSoftmax => "log_softmax",
    Reshape => "reshape", Permute => "permute", BroadcastTo => "broadcast_to",
    SumTo => "sum_to", Concat => "concat", Narrow => "narrow", PadZeros => "pad_zeros",
    IndexSelect => "index_select", IndexAdd => "index_add", Gather => "gather",
    Scatter => "scatter", Unfold => "unfold", Fold => "fold", Cast => "cast", Custom => "custom",
}

/// A recorded operation and the data its backward rule needs (never the
/// input values: those are the node's input `Var`s, so the rule stays
/// differentiable for second-order use).
#[derive(Debug, Clone)]
pub enum Op {
    /// An elementwise function of one input; see [`OpKind`] for which.
    Unary(OpKind),
    /// `max(x, 0) + slope * min(x, 0)`.
    LeakyRelu(f64),
    /// `min(max(x, lo), hi)`.
    Clamp(f64, f64),
    /// `x + c`.
    AddScalar(f64),
    /// `x * c`.
    MulScalar(f64),
    /// `x ^ p`.
    PowScalar(f64),
    /// A broadcasting binary op (Add, Sub, Mul, Div, Pow, Maximum, Minimum).
    Binary(OpKind),
    /// `where(mask, a, b)`; the mask (1/0) is a constant.
    Where(ferrograd_engine::Tensor),
    /// `op(a) * op(b)` with optional transposes.
    Matmul {
        /// Whether the left operand is read transposed.
        transpose_a: bool,
        /// Whether the right operand is read transposed.
        transpose_b: bool,
    },
    /// Sum over axes (resolved, sorted).
    Sum {
        /// The reduced axes.
        axes: Vec<usize>,
        /// Whether reduced axes were kept with size 1.
        keepdim: bool,
    },
    /// Max (`true`) or min (`false`) over axes.
    Extremum {
        /// Max or min.
        is_max: bool,
        /// The reduced axes.
        axes: Vec<usize>,
        /// Whether reduced axes were kept with size 1.
        keepdim: bool,
    },
    /// logsumexp over axes.
    LogSumExp {
        /// The reduced axes.
        axes: Vec<usize>,
        /// Whether reduced axes were kept with size 1.
        keepdim: bool,
    },
    /// softmax along an axis.
    Softmax(usize),
    /// log_softmax along an axis.
    LogSoftmax(usize),
    /// A reshape (also squeeze/unsqueeze).
    Reshape,
    /// An axis permutation.
    Permute(Vec<usize>),
    /// A broadcast to the output shape.
    BroadcastTo,
    /// A sum down to the output shape.
    SumTo,
    /// A concatenation along an axis.
    Concat(usize),
    /// `narrow(axis, start, len)`.
    Narrow {
        /// The axis.
        axis: usize,
        /// First index kept.
        start: usize,
    },
    /// Zero padding along an axis.
    PadZeros {
        /// The axis.
        axis: usize,
        /// Zeros added before.
        before: usize,
    },
    /// Rows selected by index.
    IndexSelect(Vec<usize>),
    /// Rows added into a zero tensor at the given indices.
    IndexAdd(Vec<usize>),
    /// One column per row (class labels).
    Gather(Vec<usize>),
    /// The adjoint of gather.
    Scatter(Vec<usize>),
    /// Sliding windows of an image batch as columns (im2col).
    Unfold(ferrograd_engine::Window2d),
    /// Columns summed back into an image (col2im), the adjoint of unfold.
    Fold(ferrograd_engine::Window2d),
    /// A dtype conversion.
    Cast,
    /// A user-defined primitive ([`crate::custom::PrimitiveOp`]).
    Custom(std::sync::Arc<dyn crate::custom::PrimitiveOp>),
}

impl Op {
    /// The op's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Unary(k) | Op::Binary(k) => *k,
            Op::LeakyRelu(_) => OpKind::LeakyRelu,
            Op::Clamp(..) => OpKind::Clamp,
            Op::AddScalar(_) => OpKind::AddScalar,
            Op::MulScalar(_) => OpKind::MulScalar,
            Op::PowScalar(_) => OpKind::PowScalar,
            Op::Where(_) => OpKind::Where,
            Op::Matmul { .. } => OpKind::Matmul,
            Op::Sum { .. } => OpKind::Sum,
            Op::Extremum { is_max: true, .. } => OpKind::Max,
            Op::Extremum { is_max: false, .. } => OpKind::Min,
            Op::LogSumExp { .. } => OpKind::LogSumExp,
            Op::Softmax(_) => OpKind::Softmax,
            Op::LogSoftmax(_) => OpKind::LogSoftmax,
            Op::Reshape => OpKind::Reshape,
            Op::Permute(_) => OpKind::Permute,
            Op::BroadcastTo => OpKind::BroadcastTo,
            Op::SumTo => OpKind::SumTo,
            Op::Concat(_) => OpKind::Concat,
            Op::Narrow { .. } => OpKind::Narrow,
            Op::PadZeros { .. } => OpKind::PadZeros,
            Op::IndexSelect(_) => OpKind::IndexSelect,
            Op::IndexAdd(_) => OpKind::IndexAdd,
            Op::Gather(_) => OpKind::Gather,
            Op::Scatter(_) => OpKind::Scatter,
            Op::Unfold(_) => OpKind::Unfold,
            Op::Fold(_) => OpKind::Fold,
            Op::Cast => OpKind::Cast,
            Op::Custom(_) => OpKind::Custom,
        }
    }
}
