"""Quick start: attention over bags of digit images
================================================

Each sample is a bag of 4-10 images from scikit-learn's bundled digits; a bag
is positive when it holds at least one 9.  Mean pooling blurs the single 9
into the rest of the bag; attention learns to look at it.
"""

# %%
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import AttentionClassifier, ElementwiseTransformer

digits = load_digits()
rng = np.random.RandomState(0)
bags, y = [], []
for _ in range(400):
    index = rng.choice(len(digits.data), size=rng.randint(4, 11), replace=False)
    bags.append(digits.data[index])
    y.append(int((digits.target[index] == 9).any()))
y = np.array(y)
bags_train, bags_test, y_train, y_test = train_test_split(
    bags, y, test_size=0.25, random_state=0, stratify=y
)

# %%
model = make_pipeline(
    ElementwiseTransformer(StandardScaler()), AttentionClassifier(random_state=0)
)
model.fit(bags_train, y_train)
print(f"test accuracy: {model.score(bags_test, y_test):.3f}")

# %%
# Which image did the model look at?  Weights of the first head, first bag
# with a 9 in it:
first = int(np.flatnonzero(y_test)[0])
weights = model[-1].attention_weights(model[0].transform(bags_test[first : first + 1]))[0]
print("attention weights (head 0):", np.round(weights[:, 0], 2))
