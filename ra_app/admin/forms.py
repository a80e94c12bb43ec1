from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, SubmitField
from wtforms.validators import DataRequired, Length

from ..core.models import Role

ROLE_CHOICES = [r.value for r in Role]


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="reviewer")
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=1024)])
    in_training = BooleanField("In training (every task goes to a second reviewer)")
    submit = SubmitField("Create account")
